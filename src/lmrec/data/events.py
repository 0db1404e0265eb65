"""Which events count as liking an item, and how much: one policy for training and serving.

The offline data layer (cleaning, `Dataset.from_frames`) and the server's state store
both ask an `EventPolicy`, so a model trained on a log and the server that feeds it
fresh events agree on what joins a user's history.

The event types, in the order their codes are stored in `Interactions.events`:

- `interaction`: an untyped offline row (a log with neither event types nor ratings);
- `view`, `click`, `add_to_cart`, `purchase`: implicit feedback, positive with the
  policy's weight for the type (0.25 < 0.5 < 0.75 < 1.0 by default);
- `rating`: explicit feedback, positive when its value is at least `min_rating`
  (every rating when `min_rating` is None, the offline default); its weight is
  `rating * value`, so a 4-star rating weighs 4 with the default `rating=1.0`;
- `search`: recorded (its query text is in the event's context) but never positive
  or negative: a query is not a consumed item, and a search need not name one;
- `not_interested`: negative feedback ("do not show me this").

A type whose weight is set to 0 is recorded but no longer positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lmrec.errors import ConfigError, first_problem

__all__ = [
    "EVENT_TYPES",
    "NEGATIVE_EVENTS",
    "NEUTRAL_EVENTS",
    "WEIGHTED_EVENTS",
    "EventPolicy",
    "EventType",
]

EventType = Literal[
    "interaction",
    "view",
    "click",
    "add_to_cart",
    "purchase",
    "rating",
    "search",
    "not_interested",
]
#: Every event type, in code order (the code of a type is its index here).
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
#: Types that mean "do not show me this".
NEGATIVE_EVENTS: tuple[str, ...] = ("not_interested",)
#: Types that are recorded but neither positive nor negative.
NEUTRAL_EVENTS: tuple[str, ...] = ("search",)
#: Types that can be positive (all others), each with a weight field on `EventPolicy`.
WEIGHTED_EVENTS: tuple[str, ...] = tuple(
    t for t in EVENT_TYPES if t not in NEGATIVE_EVENTS + NEUTRAL_EVENTS
)


class EventPolicy(BaseModel):
    """Which events are positive and what each weighs (unknown keys fail).

    One field per weighted type (`interaction`, `view`, `click`, `add_to_cart`,
    `purchase`, `rating`); a weight of 0 makes the type non-positive. `min_rating`:
    ratings below it are not positive (None: every rating is). See the module
    docstring for how `search` and `not_interested` are treated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    interaction: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    view: float = Field(default=0.25, ge=0.0, allow_inf_nan=False)
    click: float = Field(default=0.5, ge=0.0, allow_inf_nan=False)
    add_to_cart: float = Field(default=0.75, ge=0.0, allow_inf_nan=False)
    purchase: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    rating: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    min_rating: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _some_type_is_positive(self) -> EventPolicy:
        if not self.positive_types:
            raise ValueError("every event weight is 0: no event would count as positive")
        return self

    @classmethod
    def parse(cls, weights: str | None = None, min_rating: float | None = None) -> EventPolicy:
        """A policy from the compact CLI form `view=0.25,click=0.5,...` (unnamed types keep defaults).

        Raises `ConfigError` (one line, user-fixable) for a malformed pair, an unknown
        type or a negative weight.
        """
        values: dict[str, float | None] = {"min_rating": min_rating}
        for pair in (weights or "").split(","):
            if not pair.strip():
                continue
            name, sep, number = pair.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ConfigError(f"event weight {pair.strip()!r} is not TYPE=WEIGHT")
            if name not in WEIGHTED_EVENTS:
                raise ConfigError(
                    f"cannot weigh event type {name!r}; weighted types: {', '.join(WEIGHTED_EVENTS)}"
                )
            try:
                values[name] = float(number)
            except ValueError:
                raise ConfigError(
                    f"event weight {pair.strip()!r}: {number!r} is not a number"
                ) from None
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(f"event policy: {first_problem(exc)}") from None

    def format_weights(self) -> str:
        """The weights in the compact form `parse` reads (`interaction=1,view=0.25,...`)."""
        return ",".join(f"{t}={self.type_weight(t):g}" for t in WEIGHTED_EVENTS)

    @property
    def positive_types(self) -> tuple[str, ...]:
        """Types that can be positive (weight above 0), in code order."""
        return tuple(t for t in WEIGHTED_EVENTS if self.type_weight(t) > 0)

    @property
    def negative_types(self) -> tuple[str, ...]:
        """Types that mean "do not show me this"."""
        return NEGATIVE_EVENTS

    def type_weight(self, type: str) -> float:
        """The configured weight of a type (0 for types that are never positive)."""
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; known: {', '.join(EVENT_TYPES)}")
        return float(getattr(self, type)) if type in WEIGHTED_EVENTS else 0.0

    def is_positive(self, type: str, value: float | None = None) -> bool:
        """Whether one event joins the user's history (a rating without a value does)."""
        if self.type_weight(type) <= 0:
            return False
        if type != "rating" or self.min_rating is None or value is None or np.isnan(value):
            return True
        return value >= self.min_rating

    def weight(self, type: str, value: float | None = None) -> float:
        """How much one event counts: 0 unless positive; a rating's weight scales with its value."""
        if not self.is_positive(type, value):
            return 0.0
        w = self.type_weight(type)
        if type == "rating" and value is not None and not np.isnan(value):
            return w * float(value)
        return w

    def positive_mask(
        self, types: Sequence[str] | np.ndarray, values: Sequence[float] | np.ndarray | None = None
    ) -> np.ndarray:
        """`is_positive` for many events at once (`values` NaN where an event has none)."""
        types = np.asarray(types, dtype=object)
        known = np.isin(types, EVENT_TYPES)
        if not known.all():
            unknown = sorted({str(t) for t in types[~known]})
            raise ValueError(f"unknown event types {unknown[:5]}; known: {', '.join(EVENT_TYPES)}")
        mask = np.isin(types, self.positive_types)
        if self.min_rating is not None and values is not None:
            v = np.asarray(values, dtype=np.float64)
            low = (types == "rating") & ~np.isnan(v) & (v < self.min_rating)
            mask &= ~low
        return mask

    def weights(
        self, types: Sequence[str] | np.ndarray, values: Sequence[float] | np.ndarray | None = None
    ) -> np.ndarray:
        """`weight` for many events at once, as float32 (`values` NaN where an event has none)."""
        types = np.asarray(types, dtype=object)
        out = np.zeros(len(types), dtype=np.float64)
        for t in self.positive_types:
            out[types == t] = self.type_weight(t)
        if values is not None:
            v = np.asarray(values, dtype=np.float64)
            rated = (types == "rating") & ~np.isnan(v)
            out[rated] *= v[rated]
        out[~self.positive_mask(types, values)] = 0.0
        return out.astype(np.float32)
