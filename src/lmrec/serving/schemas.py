"""HTTP request and response bodies (separate from the domain types they map to)."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from lmrec.experiments.design import Experiment, Status
from lmrec.ranking.explain import Explanation
from lmrec.ranking.rerank import RerankOptions

__all__ = [
    "MAX_BATCH",
    "MAX_ID_BYTES",
    "MAX_K",
    "AssignmentOut",
    "EraseRequest",
    "EraseResponse",
    "ErrorBody",
    "EventIn",
    "EventsRequest",
    "EventsResponse",
    "ExperimentOut",
    "ExperimentsResponse",
    "ItemIn",
    "ItemsRequest",
    "ItemsResponse",
    "ModelLoadRequest",
    "ModelResponse",
    "RecommendationOut",
    "RecommendationRequest",
    "RecommendationResponse",
]

MAX_ID_BYTES = 256
MAX_K = 500
MAX_BATCH = 1000


def _check_id(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(_check_text(value).encode("utf-8")) > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes in UTF-8")
    return value


#: An external id: any non-empty string of at most 256 UTF-8 bytes. JSON Schema counts
#: characters, not bytes, so the document states the bounds it can (every longer string
#: is refused) and the byte limit in words; clients generated from it then send valid ids.
Id = Annotated[
    str,
    AfterValidator(_check_id),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_BYTES,
            "description": f"Any non-empty string of at most {MAX_ID_BYTES} UTF-8 bytes.",
        }
    ),
]
#: What a client may send: every `lmrec.data.events` type but the offline-only `interaction`.
#: Which of them join a history is the server's `EventPolicy`.
EventType = Literal[
    "view", "click", "add_to_cart", "purchase", "rating", "search", "not_interested"
]
#: A number that is not NaN or infinite: JSON parsers here accept `NaN` and `Infinity`,
#: and SQLite would store NaN as NULL (a NOT NULL column then drops the row silently).
Finite = Annotated[float, Field(allow_inf_nan=False)]
#: Largest business boost, in standard deviations of relevance: far past the point
#: where a boost outranks every unboosted item, and small enough that scores stay finite.
MAX_BOOST = 100.0


def _check_text(value: Any) -> Any:
    """Refuse strings that are not valid Unicode (lone surrogates, which `\ud800` escapes make)
    and numbers that are not finite, anywhere inside `value`.

    Lone surrogates cannot be encoded as UTF-8, so the catalogue and the text encoder
    would fail on them later with a server error instead of a 422 now; NaN and
    Infinity (which JSON parsers here accept) would be stored as invalid JSON.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_text(key)
            _check_text(inner)
    elif isinstance(value, list):
        for inner in value:
            _check_text(inner)
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Body):
    """One user action.

    A `search` carries its query text in `context.query` and may omit `item_id`; it is
    recorded but never joins the user's history (a query is not a consumed item).
    """

    event_id: Id = Field(
        description="Unique id; a repeated id is stored once (idempotent retries)."
    )
    user_id: Id
    item_id: Id | None = Field(
        None, description="The item acted on; required for every type but `search`."
    )
    type: EventType
    timestamp: _dt.datetime | Annotated[Finite, Field(strict=True, ge=0)] | None = Field(
        None,
        description="When it happened: ISO 8601 or seconds since the epoch (default: now); at "
        "most the server's `event_future_s` ahead of its clock.",
    )
    value: Finite | None = Field(
        None, description="Rating value or quantity, when the type has one."
    )
    context: Annotated[dict[str, Any], AfterValidator(_check_text)] = Field(
        default_factory=dict,
        description="Device, page, session, ...; for a `search`, `query` holds its text.",
    )
    request_id: Id | None = Field(
        None,
        description="The `request_id` of the recommendation list this event responds to "
        "(credits it to that list's experiment variant; without it, an event on a shown item "
        "within the experiment's attribution window is credited).",
    )

    @model_validator(mode="after")
    def _item_or_query(self) -> EventIn:
        if self.type == "search":
            query = self.context.get("query")
            if not isinstance(query, str) or not query.strip():
                raise ValueError("a search event needs its text in context.query")
        elif self.item_id is None:
            raise ValueError(f"a {self.type} event needs an item_id")
        return self


class EventsRequest(_Body):
    """A batch of events, committed together."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsResponse(BaseModel):
    """How many events were new and how many were repeats of stored ones."""

    accepted: int
    duplicates: int


class RecommendationRequest(_Body):
    """Who to recommend for: a user id, a history, or both."""

    user_id: Id | None = None
    session_id: Id | None = Field(
        None,
        description="A stable id of an anonymous client: puts it in experiments when there is no "
        "`user_id` (send its events under this id as `user_id`).",
    )
    history: list[Id] = Field(
        default_factory=list,
        max_length=MAX_BATCH,
        description="Item ids the user just interacted with, oldest first.",
    )
    preview: bool = Field(
        False,
        description="Answer as the user's experiments would, without logging an exposure: "
        "the list counts in no experiment (dashboards, debugging).",
    )
    k: int = Field(10, ge=1, le=MAX_K, description=f"How many items (1 to {MAX_K}).")
    query: str | None = Field(
        None, max_length=1000, description="Free text that steers the answer."
    )
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_BATCH)
    filters: dict[str, str | int | float | list[str | int | float]] = Field(
        default_factory=dict, description='Item attributes to require, e.g. {"brand": "Prada"}.'
    )
    exclude_seen: bool = Field(True, description="Leave out items the user already consumed.")
    mmr_lambda: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Diversity knob: 1 = relevance order, lower = more diverse (MMR). Default: the model's.",
    )
    mmr_penalty: Literal["max", "mean"] | None = Field(
        None,
        description=(
            "MMR redundancy term: `max` similarity to the items already picked (classic) or "
            "`mean` similarity (buys more intra-list diversity per relevance lost). "
            "Default: the model's."
        ),
    )
    mmr_relevance: Literal["minmax", "exp"] | None = Field(
        None,
        description=(
            "How MMR scales relevance before mixing: `minmax` over the candidates or `exp` "
            "(a learned fusion's logit as odds against the best candidate). Default: the model's."
        ),
    )
    exposure_cap: int | None = Field(
        None, ge=1, le=MAX_K, description="At most this many items per `exposure_field` value."
    )
    exposure_field: str | None = Field(
        None, max_length=100, description='Attribute the cap counts (default "brand").'
    )
    boosts: dict[str, Annotated[Finite, Field(ge=-MAX_BOOST, le=MAX_BOOST)]] = Field(
        default_factory=dict,
        max_length=100,
        description=(
            f"Attribute token -> boost in standard deviations (at most {MAX_BOOST:g} either way), "
            'e.g. {"brand=Acme": 1.0}.'
        ),
    )
    explain: bool = Field(
        True,
        description="Return an explanation for each item (the first 50 of a list; the artefact's `explain_limit`).",
    )

    def knobs(self) -> dict[str, Any]:
        """The re-ranking knobs this request sets (None = the pipeline's default)."""
        return self.model_dump(include=_KNOBS, exclude_none=True, exclude_defaults=True)


#: The request fields that are re-ranking knobs (`RerankOptions`), set per call.
_KNOBS = set(RerankOptions.model_fields) & set(RecommendationRequest.model_fields)


class RecommendationOut(BaseModel):
    """One recommended item."""

    item_id: str
    score: float
    reasons: list[str]
    explanation: Explanation | None = None
    team: Literal["a", "b"] | None = Field(
        None, description="In an interleaving experiment: the arm that contributed the item."
    )


class AssignmentOut(BaseModel):
    """An experiment the caller is in and the variant it saw."""

    experiment_id: str
    variant: str


class RecommendationResponse(BaseModel):
    """The ranked items, the model version that ranked them and the experiment they were served in.

    Send `request_id` with the events this list leads to. `experiment_id`/`variant`
    name the first experiment (by layer) the caller is in; `experiments` lists all.
    """

    items: list[RecommendationOut]
    model_version: str
    request_id: str = ""
    experiment_id: str | None = None
    variant: str | None = None
    experiments: list[AssignmentOut] = Field(default_factory=list)


class ItemIn(BaseModel):
    """An item to add or replace; unknown fields are kept as attributes."""

    model_config = ConfigDict(extra="allow")

    item_id: Id
    title: str = ""
    description: str = ""
    brand: str = ""
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    deleted: bool = Field(False, description="True removes the item from recommendations.")

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        """Every field, attributes included, is checked: all of it reaches the catalogue."""
        return _check_text(data)


class ItemsRequest(_Body):
    """A batch of item upserts."""

    items: list[ItemIn] = Field(min_length=1, max_length=MAX_BATCH)


class ItemsResponse(BaseModel):
    """How many items were added, updated and deleted, and whether they have vectors."""

    added: int
    updated: int
    deleted: int
    scored_from_text: bool


class EraseRequest(_Body):
    """Whom to forget."""

    user_id: Id = Field(description="Sent in the body so it stays out of URLs and access logs.")


class EraseResponse(BaseModel):
    """How many stored events were removed, and whether no old copy remains on disk."""

    erased_events: int
    wal_cleared: bool = Field(
        True,
        description="False: the erasure is committed and nothing of the user is served, but old "
        "page images may stay in the write-ahead log file until a later checkpoint.",
    )


class ModelLoadRequest(_Body):
    """Which artefact directory to serve next."""

    path: str = Field(min_length=1, max_length=4096, pattern="^[^\x00]*$")


class ModelResponse(BaseModel):
    """The model now serving."""

    model_version: str
    strategy: str
    n_items: int
    text_model: str | None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: `{"error": {"code": ..., "message": ...}}`."""

    error: ErrorDetail


class ExperimentOut(Experiment):
    """A stored experiment and where it stands now."""

    status: Status


class ExperimentsResponse(BaseModel):
    """Every stored experiment."""

    experiments: list[ExperimentOut]
