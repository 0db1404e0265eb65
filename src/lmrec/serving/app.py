"""The HTTP service: an app factory whose routes only translate between schemas and the pipeline.

Nothing heavy happens at import or in `create_app`: the state store, the model and
the encoder are opened in the lifespan, so tests build as many apps as they like.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from lmrec import __version__
from lmrec.artifacts import artifact_encoder, read_event_policy
from lmrec.errors import LmrecError
from lmrec.experiments.apply import Served, rank_assigned
from lmrec.pipeline import Encoder, Pipeline, Recommendation
from lmrec.pipeline import Query as PipelineQuery
from lmrec.serving.background import disk_sync as start_disk_sync
from lmrec.serving.background import follower
from lmrec.serving.batching import RankingQueue
from lmrec.serving.browse_routes import router as browse_router
from lmrec.serving.deps import (
    AdminKey,
    ApiError,
    Credentials,
    DeleteKey,
    HeaderKey,
    IngestCaller,
    IngestKey,
    Metrics,
    ReadKey,
    Services,
    ServiceState,
    authorize,
    error_response,
    require_scope,
)
from lmrec.serving.encoders import HashingEncoder
from lmrec.serving.experiment_routes import router as experiment_router
from lmrec.serving.experiments import ExperimentBook
from lmrec.serving.registry import ModelRegistry
from lmrec.serving.report_routes import router as report_router
from lmrec.serving.schemas import (
    MAX_K,
    AssignmentOut,
    EraseRequest,
    EraseResponse,
    ErrorBody,
    EventsRequest,
    EventsResponse,
    Id,
    ItemsRequest,
    ItemsResponse,
    ModelLoadRequest,
    ModelResponse,
    RecommendationOut,
    RecommendationRequest,
    RecommendationResponse,
)
from lmrec.serving.settings import Settings
from lmrec.serving.store import Event, StateStore, StoredItem, StoreUnavailable, open_store

__all__ = ["ApiError", "create_app"]

log = logging.getLogger("lmrec.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class _BodyLimit:
    """Answers 413 once a request body passes `limit` bytes, and 408 if it takes over `timeout` s.

    Counts the bytes actually received (so chunked bodies without Content-Length
    are limited too) and buffers at most `limit` bytes before handing the body on.
    A client that sends part of a body and stalls (slowloris) would otherwise hold
    its connection and a task for ever; after the timeout it is answered and closed.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float):
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(
            413, "payload_too_large", f"request body is larger than {self.limit} bytes"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.timeout) as reading:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # client went away
                    return
                body = message.get("body", b"")
                size += len(body)
                if size > self.limit:
                    await too_large(scope, receive, send)
                    return
                chunks.append(body)
                if not message.get("more_body", False):
                    break
        if reading.cancelled_caught:
            slow = error_response(
                408,
                "request_timeout",
                f"the request body took longer than {self.timeout:g} s",
                {"Connection": "close"},  # the rest of the body is never read: drop the connection
            )
            await slow(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _Observe:
    """Counts requests and latency by route template and logs them without ids or query strings."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            log.info("%s %s %d %.1fms", scope["method"], route, status, elapsed * 1000)


# Route-specific error statuses, documented so clients generated from the OpenAPI expect them.
_NO_SUCH_ITEM: dict[str, Any] = {"model": ErrorBody, "description": "No such (active) item"}
_NOT_READY: dict[str, Any] = {"model": ErrorBody, "description": "No model or state store yet"}


def _out(r: Recommendation, team: Literal["a", "b"] | None = None) -> RecommendationOut:
    return RecommendationOut(
        item_id=r.item_id, score=r.score, reasons=r.reasons, explanation=r.explanation, team=team
    )


def _event_time(
    value: _dt.datetime | float | None, now: float, future_s: float, where: str
) -> float:
    """An event's time in epoch seconds, refused (422 naming `where`) past `future_s` from now.

    A history is a user's newest events, so an event dated in the future would stay
    the newest, pinning the user's answer until that date; milliseconds or
    microseconds sent as seconds are the usual cause, and are named as such.
    """
    if value is None:
        return now
    ts = (
        (value if value.tzinfo else value.replace(tzinfo=_dt.UTC)).timestamp()
        if isinstance(value, _dt.datetime)
        else float(value)
    )
    if ts <= now + future_s:
        return ts
    hint = ""
    for unit, scale in (("milliseconds", 1e3), ("microseconds", 1e6)):
        if 1e8 < ts / scale <= now + future_s:  # after 1973 once divided: a plausible time
            hint = f"; it looks like {unit} since the epoch: send seconds"
            break
    raise ApiError(
        422,
        "invalid_request",
        f"{where}: {value} is more than {future_s:g} s after the server's clock{hint}",
    )


def _first_model(settings: Settings, store: StateStore, registry: ModelRegistry) -> Pipeline:
    """Load the model to serve at start-up: with a shared store, the one the workers
    were last told to serve (so a restarted worker does not bring an old version
    back), else `settings.model_dir`; `model_dir` too when the announced one fails."""
    announced = store.announced_model() if settings.store is not None else None
    if announced is not None:
        registry.announcement_seen = announced.seq
        try:
            return registry.load(announced.path)
        except (LmrecError, OSError) as exc:
            log.warning("the announced model %s does not load (%s)", announced.path, exc)
    return registry.load(settings.model_dir)


def create_app(
    settings: Settings, encoder: Encoder | None = None, encoder_identity: str | None = None
) -> FastAPI:
    """Build the service for `settings`; `encoder` (texts -> vectors) overrides `settings.encoder`.

    `encoder_identity` names that encoder, so online items' stored vectors are reused
    across restarts (without a name they are encoded again each time).

    The state store, model and encoder open in the lifespan, not here.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        policy = settings.event_policy or read_event_policy(settings.model_dir)
        enc, identity = encoder, encoder_identity
        if enc is None and settings.encoder == "minilm":
            from lmrec.serving.encoders import MINILM_IDENTITY, minilm_encoder

            enc, identity = minilm_encoder(), MINILM_IDENTITY
        elif enc is None and settings.encoder in ("auto", "artifact"):
            carried = artifact_encoder(settings.model_dir)
            if carried is None and settings.encoder == "artifact":
                raise LmrecError(f"{settings.model_dir}: the artefact carries no text encoder")
            enc, identity = carried, None if carried is None else carried.identity
        elif isinstance(enc, HashingEncoder) and identity is None:
            identity = enc.identity
        store = open_store(settings.state_location, policy)
        registry = ModelRegistry(store, enc, settings.trusted_model_classes, identity)
        experiments = ExperimentBook(
            store, registry, settings.experiment_holdout, settings.admin_root
        )
        try:
            pipeline = _first_model(settings, store, registry)
            experiments.load_models()
        except BaseException:
            store.close()
            raise
        metrics.serving(pipeline)
        disk_sync = start_disk_sync(store).start()
        follow = None
        if settings.store is not None:  # other workers share the state: follow them
            follow = follower(
                registry, settings.follow_interval_s, lambda: metrics.serving(registry.pipeline)
            ).start()
        ranking = RankingQueue(settings.ranking_batch, metrics.batches.observe).start()
        app.state.services = ServiceState(
            settings,
            store,
            registry,
            metrics,
            experiments,
            disk_sync,
            ranking,
            CapacityLimiter(4 * settings.ranking_batch),
        )
        try:
            yield
        finally:
            ranking.close()
            if follow is not None:
                follow.close()
            disk_sync.close()
            store.close()

    metrics = Metrics()
    app = FastAPI(
        title="lmrec",
        version=__version__,
        summary="Real-time recommendations: events change the next answer; new items are live at once.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url="/redoc" if settings.docs else None,
        openapi_url="/openapi.json" if settings.docs else None,
        responses={
            400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8 JSON)"},
            401: {"model": ErrorBody, "description": "No or unknown API key"},
            403: {"model": ErrorBody, "description": "The key lacks the scope"},
            413: {"model": ErrorBody, "description": "Body too large"},
            422: {"model": ErrorBody, "description": "Invalid request"},
        },
    )
    app.add_middleware(_Observe, metrics=metrics)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes, timeout=settings.body_timeout_s)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("state store unavailable: %s", exc)
        return error_response(503, "store_unavailable", f"{exc}; nothing was recorded")

    @app.exception_handler(LmrecError)
    async def _lmrec_error(request: Request, exc: LmrecError) -> JSONResponse:
        return error_response(422, "invalid_request", str(exc))

    # -- health and metrics (no key) --------------------------------------------

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], responses={503: _NOT_READY})
    def ready(request: Request) -> JSONResponse:
        """A model is loaded and the state store answers."""
        svc: ServiceState | None = getattr(request.app.state, "services", None)
        if svc is None or not svc.registry.ready or not svc.store.ping():
            return error_response(503, "not_ready", "the model or the state store is not ready")
        return JSONResponse({"status": "ready", "model_version": svc.registry.pipeline.version})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def prometheus(request: Request, credentials: Credentials, api_key: HeaderKey) -> Response:
        """Prometheus metrics."""
        svc: ServiceState = request.app.state.services
        if not svc.settings.metrics_public:
            authorize(svc.settings, credentials, api_key, "admin")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # -- events -------------------------------------------------------------------

    @app.post(
        "/v1/events", tags=["events"], dependencies=[IngestKey], response_model=EventsResponse
    )
    def post_events(body: EventsRequest, svc: Services) -> EventsResponse:
        """Record user events; answers only after the batch is durably committed."""
        now = time.time()
        events = [
            Event(
                e.event_id,
                e.user_id,
                e.item_id,
                e.type,
                _event_time(e.timestamp, now, svc.settings.event_future_s, f"events.{i}.timestamp"),
                e.value,
                e.context,
                e.request_id,
            )
            for i, e in enumerate(body.events)
        ]
        accepted = svc.store.add_events(events)
        svc.metrics.events.labels("accepted").inc(accepted)
        svc.metrics.events.labels("duplicate").inc(len(events) - accepted)
        return EventsResponse(accepted=accepted, duplicates=len(events) - accepted)

    # -- recommendations ----------------------------------------------------------

    @app.post(
        "/v1/recommendations",
        tags=["recommendations"],
        dependencies=[ReadKey],
        response_model=RecommendationResponse,
    )
    async def recommend(body: RecommendationRequest, svc: Services) -> RecommendationResponse:
        """Top-k items for a user and/or a history; consumed and not-interested items are left out."""
        # Ranking is numpy and Python work of milliseconds to seconds (a long history,
        # a large k, explanations): it runs in the ranking thread, never on the event
        # loop, so health checks, events and other requests are answered meanwhile.
        # Ranking inline was measured too: under load it starves the events route.
        # The store is read in a worker thread, which then waits for the ranking thread
        # (`RankingQueue`: requests that wait together are ranked together).
        served, request_id = await run_sync(_recommend, body, svc, limiter=svc.ranking_threads)
        assigned = [
            AssignmentOut(experiment_id=x.experiment_id, variant=x.variant)
            for x in served.exposures
        ]
        teams: list[Any] = served.teams or [None] * len(served.items)
        return RecommendationResponse(
            items=[_out(r, team) for r, team in zip(served.items, teams, strict=True)],
            model_version=served.model_version,
            request_id=request_id,
            experiment_id=assigned[0].experiment_id if assigned else None,
            variant=assigned[0].variant if assigned else None,
            experiments=assigned,
        )

    def _recommend(body: RecommendationRequest, svc: ServiceState) -> tuple[Served, str]:
        history: list[str] = []
        negative: list[str] = []
        erased = False
        if body.user_id is not None:
            state = svc.store.user_state(body.user_id, svc.settings.history_limit)
            history, negative, erased = state.history, state.negative, state.erased
        query = PipelineQuery(
            user_id=body.user_id,
            history=[*history, *body.history][-svc.settings.history_limit :],
            k=min(body.k, svc.settings.max_k),
            exclude=body.exclude,
            negative=negative,
            filters=body.filters,
            exclude_seen=body.exclude_seen,
            use_trained_history=not erased,
            text=body.query,
            knobs=body.knobs(),
            explain=body.explain,
        )
        now = time.time()
        unit = body.user_id if body.user_id is not None else body.session_id
        assignments = svc.experiments.assign(unit, now) if unit is not None else []
        request_id = uuid.uuid4().hex
        served = rank_assigned(
            query,
            assignments,
            svc.registry.pipeline_for,
            unit=unit,
            request_id=request_id,
            now=now,
            rank=svc.ranking.recommend,
        )
        # An experiment's list is answered only once it is in the exposure log; a preview
        # (the dashboard looking at a user) is not an exposure.
        if not body.preview:
            svc.store.add_exposures(served.exposures)
        return served, request_id

    # -- items ----------------------------------------------------------------------

    @app.post("/v1/items", tags=["items"], response_model=ItemsResponse)
    def upsert_items(body: ItemsRequest, svc: Services, caller: IngestCaller) -> ItemsResponse:
        """Add, replace or delete items (deleting needs the `delete` scope); new items are live when this returns."""
        if any(i.deleted for i in body.items):
            require_scope(caller, "delete", "deleting items")
        registry = svc.registry
        stored = [
            StoredItem(i.item_id, i.model_dump(exclude={"item_id", "deleted"}), i.deleted)
            for i in body.items
        ]
        stored = registry.with_vectors(stored)  # encoded before the lock, stored with the rows
        with registry.items_lock:
            pipeline, *variants = registry.pipelines()
            existing = sum(1 for s in stored if not s.deleted and pipeline.knows_item(s.item_id))
            svc.store.put_items(stored)
            added, deleted = registry.apply(pipeline, stored)
            for other in variants:  # experiment arms see the same catalogue
                registry.apply(other, stored)
        svc.metrics.items.set(pipeline.n_items)
        return ItemsResponse(
            added=added,
            updated=existing,
            deleted=deleted,
            scored_from_text=pipeline.has_vectors and pipeline.encoder is not None,
        )

    @app.delete(
        "/v1/items",
        tags=["items"],
        dependencies=[DeleteKey],
        response_model=ItemsResponse,
        responses={404: _NO_SUCH_ITEM},
    )
    def delete_item(
        item_id: Annotated[Id, Query(description="The item to stop recommending.")], svc: Services
    ) -> ItemsResponse:
        """Stop recommending an item."""
        registry = svc.registry
        with registry.items_lock:
            pipeline = registry.pipeline
            if not pipeline.is_active(item_id):
                raise ApiError(404, "not_found", "no such item")
            svc.store.put_items([StoredItem(item_id, {}, True)])
            deleted = pipeline.remove_items([item_id])
            for other in registry.pipelines()[1:]:
                other.remove_items([item_id])
        return ItemsResponse(added=0, updated=0, deleted=deleted, scored_from_text=False)

    @app.get(
        "/v1/items/similar",
        tags=["items"],
        dependencies=[ReadKey],
        response_model=RecommendationResponse,
        responses={404: _NO_SUCH_ITEM},
    )
    def similar_items(
        item_id: Annotated[Id, Query(description="The item to find neighbours of.")],
        svc: Services,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    ) -> RecommendationResponse:
        """Items most like one item."""
        pipeline = svc.registry.pipeline
        if not pipeline.is_active(item_id):
            raise ApiError(404, "not_found", "no such item")
        recs = pipeline.similar(item_id, k)
        return RecommendationResponse(
            items=[_out(r) for r in recs],
            model_version=pipeline.version,
        )

    # -- users ----------------------------------------------------------------------

    @app.delete("/v1/users", tags=["users"], dependencies=[DeleteKey], response_model=EraseResponse)
    def erase_user(body: EraseRequest, svc: Services) -> EraseResponse:
        """Erase a user's events and state everywhere (the model's copy is no longer served)."""
        done = svc.store.erase_user(body.user_id)
        svc.registry.forget_user(body.user_id)  # the artefact's copy, in memory
        # The store's keyed hash: without the secret salt in the state file, a list of
        # candidate ids cannot be matched against the log.
        log.info("erased user %s (%d events)", svc.store.hash_id(body.user_id)[:12], done.events)
        if not done.wal_cleared:
            log.warning("erasure committed but the write-ahead log could not be emptied")
        return EraseResponse(erased_events=done.events, wal_cleared=done.wal_cleared)

    # -- models ---------------------------------------------------------------------

    def _model(svc: ServiceState) -> ModelResponse:
        p = svc.registry.pipeline
        return ModelResponse(
            model_version=p.version,
            strategy=p.strategy,
            n_items=p.n_items,
            text_model=svc.registry.text_model,
        )

    @app.get(
        "/v1/models/current", tags=["models"], dependencies=[ReadKey], response_model=ModelResponse
    )
    def current_model(svc: Services) -> ModelResponse:
        """The model version serving now."""
        return _model(svc)

    @app.post(
        "/v1/admin/models", tags=["admin"], dependencies=[AdminKey], response_model=ModelResponse
    )
    def load_model(body: ModelLoadRequest, svc: Services) -> ModelResponse:
        """Load an artefact version: verify, warm, then switch atomically; on failure the old one keeps serving."""
        path = Path(body.path)
        root = svc.settings.admin_root
        old = svc.registry.pipeline.version
        try:
            if not path.resolve().is_relative_to(root.resolve()):
                raise LmrecError(
                    "the path is outside the model root (`--model-root`; by default the "
                    "folder that holds the model served at start-up)"
                )
            pipeline = svc.registry.load(path)
        except (LmrecError, OSError) as exc:
            # OSError: a path the file system refuses (name too long, no permission).
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            svc.metrics.swaps.labels("rejected").inc()
            raise ApiError(422, "invalid_artifact", f"{reason}; still serving {old}") from None
        if svc.settings.store is not None:  # every worker sharing the store follows
            svc.registry.announcement_seen = svc.store.announce_model(
                str(path.resolve()), pipeline.version
            ).seq
        svc.metrics.swaps.labels("loaded").inc()
        svc.metrics.serving(pipeline)
        log.info("model %s replaced %s", pipeline.version, old)
        return _model(svc)

    app.include_router(experiment_router)
    app.include_router(browse_router)
    app.include_router(report_router)
    if settings.ui:
        from lmrec.serving.ui import router as ui_router

        app.include_router(ui_router)
    return app
