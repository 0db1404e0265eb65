"""Bodies of the read-only views the dashboard is built on (overview, history, items, reports).

Kept beside `lmrec.serving.schemas`, whose id and body rules they share.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lmrec.serving.schemas import MAX_BATCH, MAX_K, Id, ModelResponse, _Body

__all__ = [
    "ItemLookupRequest",
    "ItemLookupResponse",
    "ItemOut",
    "ModelLoadOut",
    "OverviewResponse",
    "ReportOut",
    "ReportsResponse",
    "RouteTraffic",
    "StateCounts",
    "Traffic",
    "UserEventOut",
    "UserHistoryRequest",
    "UserHistoryResponse",
]


class ItemLookupRequest(_Body):
    """Items to describe."""

    item_ids: list[Id] = Field(min_length=1, max_length=MAX_BATCH)


class ItemOut(BaseModel):
    """A known item's catalogue fields and whether it is recommended (`active`)."""

    item_id: str
    title: str
    active: bool
    fields: dict[str, Any] = Field(description="Every catalogue field, attributes included.")


class ItemLookupResponse(BaseModel):
    """The known items among those asked for (in the order asked), and the unknown ids."""

    items: list[ItemOut]
    missing: list[str]


class UserHistoryRequest(_Body):
    """Whose history to show."""

    user_id: Id = Field(description="Sent in the body so it stays out of URLs and access logs.")
    limit: int = Field(50, ge=1, le=MAX_K, description="Newest events (and trained items) shown.")


class UserEventOut(BaseModel):
    """One stored event of the user, with the item's title."""

    event_id: str
    item_id: str | None
    title: str
    type: str
    timestamp: float = Field(description="Seconds since the epoch.")
    value: float | None
    in_history: bool = Field(description="Whether the server's event policy makes it history.")


class UserHistoryResponse(BaseModel):
    """A user's stored events (newest first) and the history the model was trained with."""

    user_id: str
    known: bool = Field(description="The serving model holds a trained history for the user.")
    erased: bool
    events: list[UserEventOut]
    trained: list[ItemOut] = Field(
        description="The newest `limit` items of the trained history, oldest first (no times: "
        "the artefact keeps the order)."
    )


class StateCounts(BaseModel):
    """Users, items and events, in the model and in the state file."""

    users_trained: int = Field(description="Users the serving model has a history for.")
    users_online: int = Field(description="Users with stored events.")
    items: int = Field(description="Items known to the serving model, deleted ones included.")
    items_active: int
    items_online: int = Field(description="Items added, changed or deleted online.")
    events: int = Field(description="Stored events.")
    erased_users: int


class RouteTraffic(BaseModel):
    """One route's requests since start and its latency, estimated from the metric's buckets."""

    route: str
    requests: int
    errors: int = Field(description="Answers with status 500 or above.")
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class Traffic(BaseModel):
    """The server's own metrics (those of `/metrics`) since it started."""

    uptime_s: float
    requests: int
    events_accepted: int
    events_duplicate: int
    events_per_s: float = Field(description="Accepted events per second since start.")
    routes: list[RouteTraffic]


class ModelLoadOut(BaseModel):
    """One load of the serving model in this process (start-up first)."""

    at: float
    accepted: bool
    version: str | None
    strategy: str | None
    reason: str | None
    path: str | None = Field(description="Shown to admin keys only.")


class OverviewResponse(BaseModel):
    """The model serving, what its artefact records, counts, traffic and model loads.

    `traffic` is None when `/metrics` is private and the key lacks the `admin` scope.
    """

    model: ModelResponse
    manifest: dict[str, Any] = Field(
        description="The artefact manifest without its file list: dataset, model config, "
        "pipeline knobs, validation, event policy, created."
    )
    counts: StateCounts
    traffic: Traffic | None
    loads: list[ModelLoadOut]
    experiments_running: int


class ReportOut(BaseModel):
    """One HTML report in the reports folder."""

    path: str = Field(description="Relative to the reports folder, with `/`.")
    title: str
    bytes: int
    modified: float


class ReportsResponse(BaseModel):
    """The reports folder's HTML reports, newest first; `configured` False: no folder is set."""

    configured: bool
    reports: list[ReportOut]
    truncated: bool = False
