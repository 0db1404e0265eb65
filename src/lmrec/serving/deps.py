"""What the route modules share: the services, the API-key checks and the error type.

Dependencies are `async def`: they do no I/O, and FastAPI runs a plain `def`
dependency in a worker thread, a thread hop per dependency per request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lmrec.pipeline import Pipeline
from lmrec.serving.auth import ApiKey, authenticate
from lmrec.serving.background import Periodic
from lmrec.serving.batching import RankingQueue
from lmrec.serving.experiments import ExperimentBook
from lmrec.serving.registry import ModelRegistry
from lmrec.serving.settings import Settings
from lmrec.serving.store import StateStore

__all__ = [
    "AdminKey",
    "ApiError",
    "Credentials",
    "DeleteKey",
    "HeaderKey",
    "IngestCaller",
    "IngestKey",
    "Metrics",
    "ReadCaller",
    "ReadKey",
    "ServiceState",
    "Services",
    "authorize",
    "error_response",
    "has_scope",
    "require_scope",
]


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON body every error has: `{"error": {"code": ..., "message": ...}}`."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class Metrics:
    """This app's Prometheus collectors, in their own registry (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lmrec_http_requests",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lmrec_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.batches = Histogram(
            "lmrec_ranking_batch_size",
            "Recommendation requests ranked together (requests that waited for the ranking thread)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.events = Counter("lmrec_events", "Events received", ["result"], registry=self.registry)
        self.swaps = Counter("lmrec_model_loads", "Model loads", ["result"], registry=self.registry)
        self.model = Gauge(
            "lmrec_model_info",
            "The model version serving (value 1)",
            ["version"],
            registry=self.registry,
        )
        self.items = Gauge(
            "lmrec_items", "Items known to the serving model", registry=self.registry
        )

    def serving(self, pipeline: Pipeline) -> None:
        """Show `pipeline` as the model serving (its version alone) and its item count."""
        self.model.clear()
        self.model.labels(pipeline.version).set(1)
        self.items.set(pipeline.n_items)


@dataclass(eq=False)
class ServiceState:
    """What the routes share, opened in the app's lifespan."""

    settings: Settings
    store: StateStore
    registry: ModelRegistry
    metrics: Metrics
    experiments: ExperimentBook
    disk_sync: Periodic
    #: The one thread that ranks, batching the requests that wait for it.
    ranking: RankingQueue
    #: Recommendation requests in flight in worker threads (reading the store, waiting
    #: for the ranking thread), capped so that they never take every worker thread.
    ranking_threads: CapacityLimiter
    #: When the services opened (epoch seconds): rates since start are per this.
    started: float = field(default_factory=time.time)


_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


async def _services(request: Request) -> ServiceState:
    return request.app.state.services  # type: ignore[no-any-return]


Services = Annotated[ServiceState, Depends(_services)]


def authorize(
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
    api_key: str | None,
    scope: str,
) -> ApiKey | None:
    """The caller's key entry if it holds `scope`; raises the 401/403 otherwise.

    Plain and synchronous so that the route dependencies and `/metrics` share it:
    calling an `async` check without awaiting it would silently skip the check.
    """
    presented = credentials.credentials if credentials is not None else api_key
    # Trimmed alike however it came: HTTPBearer trims the token, a raw header does not.
    presented = presented.strip() if presented else presented
    if not presented:
        if settings.allow_anonymous:
            return None
        raise ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key>)")
    entry = authenticate(settings.api_keys, presented)
    if entry is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    if scope not in entry.scopes:
        raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
    return entry


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKey = Annotated[str | None, Depends(_header_key)]


def _require(scope: str) -> Callable[..., Awaitable[ApiKey | None]]:
    async def check(svc: Services, credentials: Credentials, api_key: HeaderKey) -> ApiKey | None:
        return authorize(svc.settings, credentials, api_key, scope)

    return check


ReadKey = Depends(_require("read"))
IngestKey = Depends(_require("ingest"))
DeleteKey = Depends(_require("delete"))
#: The ingest key's entry (None when anonymous), for routes that need a second scope for part of a body.
IngestCaller = Annotated[ApiKey | None, IngestKey]
#: The read key's entry (None when anonymous), for read routes that show more to a second scope.
ReadCaller = Annotated[ApiKey | None, ReadKey]


def has_scope(caller: ApiKey | None, scope: str) -> bool:
    """Whether a caller holds `scope` (an anonymous caller, allowed only on open servers, holds all)."""
    return caller is None or scope in caller.scopes


def require_scope(caller: ApiKey | None, scope: str, what: str) -> None:
    """Refuse (403) a keyed caller without `scope` for `what` (anonymous servers allow all)."""
    if not has_scope(caller, scope):
        raise ApiError(403, "forbidden", f"{what} needs the {scope!r} scope")


AdminKey = Depends(_require("admin"))
