"""Read-only views of the served state: the overview, a user's history, item details.

The dashboard (`/ui`) is built on them, and any client may use them: each needs
the `read` scope, like the recommendations themselves. What the overview says
about traffic comes from the app's own Prometheus collectors, so it agrees with
`/metrics` (and is withheld where `/metrics` is private and the key is not admin).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from fastapi import APIRouter

from lmrec.serving.deps import Metrics, ReadCaller, ReadKey, Services, ServiceState, has_scope
from lmrec.serving.schemas import ModelResponse
from lmrec.serving.view_schemas import (
    ItemLookupRequest,
    ItemLookupResponse,
    ItemOut,
    ModelLoadOut,
    OverviewResponse,
    RouteTraffic,
    StateCounts,
    Traffic,
    UserEventOut,
    UserHistoryRequest,
    UserHistoryResponse,
)

__all__ = ["histogram_quantile", "router"]

router = APIRouter()


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The `q` quantile of a cumulative histogram, interpolated within its bucket.

    `buckets`: (upper bound, cumulative count) pairs, ascending, ending at +inf;
    Prometheus' own `histogram_quantile` rule: linear within the bucket the rank falls
    in, and the largest finite bound when it falls in the last (+inf) bucket.
    """
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def _traffic(metrics: Metrics, started: float) -> Traffic:
    requests: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    sums: dict[str, float] = {}
    events = {"accepted": 0, "duplicate": 0}
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "lmrec_http_requests_total":
                requests[labels["route"]] += int(sample.value)
                if int(labels["status"]) >= 500:
                    errors[labels["route"]] += int(sample.value)
            elif sample.name == "lmrec_http_request_seconds_bucket":
                buckets[labels["route"]].append((float(labels["le"]), sample.value))
            elif sample.name == "lmrec_http_request_seconds_sum":
                sums[labels["route"]] = sample.value
            elif sample.name == "lmrec_events_total":
                events[labels["result"]] = int(sample.value)
    routes = []
    for route, n in sorted(requests.items(), key=lambda kv: -kv[1]):
        cumulative = sorted(buckets.get(route, []))
        count = cumulative[-1][1] if cumulative else 0.0

        def ms(q: float, cumulative: list[tuple[float, float]] = cumulative) -> float | None:
            value = histogram_quantile(q, cumulative)
            return None if value is None else round(1000 * value, 3)

        mean = 1000 * sums[route] / count if count and route in sums else None
        routes.append(
            RouteTraffic(
                route=route,
                requests=n,
                errors=errors.get(route, 0),
                mean_ms=None if mean is None else round(mean, 3),
                p50_ms=ms(0.5),
                p95_ms=ms(0.95),
            )
        )
    uptime = max(time.time() - started, 1e-9)
    return Traffic(
        uptime_s=round(uptime, 3),
        requests=sum(requests.values()),
        events_accepted=events["accepted"],
        events_duplicate=events["duplicate"],
        events_per_s=events["accepted"] / uptime,
        routes=routes,
    )


def _counts(svc: ServiceState) -> StateCounts:
    pipeline = svc.registry.pipeline
    stored = svc.store.counts()
    return StateCounts(
        users_trained=len(pipeline.histories.users),
        users_online=stored.users,
        items=pipeline.n_items,
        items_active=len(pipeline.item_ids()),
        items_online=stored.items,
        events=stored.events,
        erased_users=stored.erased_users,
    )


@router.get(
    "/v1/overview", tags=["overview"], dependencies=[ReadKey], response_model=OverviewResponse
)
def overview(svc: Services, caller: ReadCaller) -> OverviewResponse:
    """The serving model and its manifest, counts, the server's traffic, and model loads."""
    registry = svc.registry
    pipeline = registry.pipeline
    admin = has_scope(caller, "admin")
    now = time.time()
    return OverviewResponse(
        model=ModelResponse(
            model_version=pipeline.version,
            strategy=pipeline.strategy,
            n_items=pipeline.n_items,
            text_model=registry.text_model,
        ),
        manifest={k: v for k, v in registry.manifest.items() if k != "files"},
        counts=_counts(svc),
        traffic=_traffic(svc.metrics, svc.started)
        if svc.settings.metrics_public or admin
        else None,
        loads=[
            ModelLoadOut(
                at=load.at,
                accepted=load.accepted,
                version=load.version,
                strategy=load.strategy,
                reason=load.reason,
                path=load.path if admin else None,
            )
            for load in registry.loads
        ],
        experiments_running=sum(1 for e in svc.experiments.all() if e.status_at(now) == "running"),
    )


def _item_out(item_id: str, row: dict[str, Any], active: bool) -> ItemOut:
    fields = {k: v for k, v in row.items() if k != "id"}
    return ItemOut(
        item_id=item_id, title=str(fields.get("title") or ""), active=active, fields=fields
    )


@router.post(
    "/v1/items/lookup", tags=["items"], dependencies=[ReadKey], response_model=ItemLookupResponse
)
def lookup_items(body: ItemLookupRequest, svc: Services) -> ItemLookupResponse:
    """Catalogue fields of items by id (deleted ones too, marked inactive)."""
    pipeline = svc.registry.pipeline
    rows = pipeline.item_rows(body.item_ids)
    wanted = list(dict.fromkeys(body.item_ids))
    return ItemLookupResponse(
        items=[_item_out(i, rows[i], pipeline.is_active(i)) for i in wanted if i in rows],
        missing=[i for i in wanted if i not in rows],
    )


@router.post(
    "/v1/users/history", tags=["users"], dependencies=[ReadKey], response_model=UserHistoryResponse
)
def user_history(body: UserHistoryRequest, svc: Services) -> UserHistoryResponse:
    """A user's newest stored events with item titles, and the model's trained history."""
    pipeline = svc.registry.pipeline
    policy = svc.store.event_policy
    events = svc.store.user_events(body.user_id, body.limit)
    state = svc.store.user_state(body.user_id, 1)
    known = pipeline.known_user(body.user_id) and not state.erased
    trained_ids = (
        pipeline.items.lookup(pipeline.histories.get(body.user_id)[-body.limit :]) if known else []
    )
    rows = pipeline.item_rows([*(e.item_id for e in events if e.item_id), *trained_ids])

    def title(item_id: str | None) -> str:
        return str(rows.get(item_id, {}).get("title") or "") if item_id else ""

    return UserHistoryResponse(
        user_id=body.user_id,
        known=known,
        erased=state.erased,
        events=[
            UserEventOut(
                event_id=e.event_id,
                item_id=e.item_id,
                title=title(e.item_id),
                type=e.type,
                timestamp=e.timestamp,
                value=e.value,
                in_history=e.item_id is not None and policy.is_positive(e.type, e.value),
            )
            for e in events
        ],
        trained=[_item_out(i, rows[i], pipeline.is_active(i)) for i in trained_ids if i in rows],
    )
