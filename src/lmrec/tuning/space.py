"""Search spaces, declared where the knobs are: on each typed config's fields.

A config field becomes searchable by carrying a `Tunable` in its annotation:

    reg: Annotated[float, Tunable(10.0, 1e5, log=True)] = Field(50.0, gt=0.0)

`space_for` reads those marks from a strategy's config (names `MODEL.FIELD`, as in
`--param`), from the pipeline's re-ranking knobs (`rerank.FIELD`) and from the item
text features (`text.fields`, `text.backend`), so the range of a knob is written
once, next to its type and default. A user narrows or widens any of them with
`override` (the CLI's `--space NAME=SPEC` and `--space-file`); an unknown name fails
with the valid ones.

The default value is always a point of its dimension (a choice is added, a range is
widened), so the defaults can be the first trial of every study.
"""

from __future__ import annotations

import itertools
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel

from lmrec.errors import ConfigError

__all__ = [
    "FEATURES",
    "RERANK",
    "Dimension",
    "SearchSpace",
    "Tunable",
    "parse_spec",
    "space_for",
]

#: Prefix of the pipeline's re-ranking knobs, as in `--param rerank.mmr_lambda=0.8`.
RERANK = "rerank"
#: Prefix of the item-text feature choices.
FEATURES = "text"
#: Encoder runtimes a feature search may pick among (all read the same weights).
TEXT_BACKENDS = ("torch", "onnx-int8")
#: Most text-field combinations offered (all non-empty subsets up to this many).
_MAX_FIELD_SETS = 16


@dataclass(frozen=True)
class Tunable:
    """A config field's search range: `low`..`high` (on a log scale with `log`, in
    steps of `step`), or one of `choices`. With neither, the choices come from the
    field's type (`Literal[...]` or `bool`)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None


Kind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class Dimension:
    """One searched knob: its full name, kind, range or choices, and default."""

    name: str
    kind: Kind
    default: Any
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """The choices as the strings the sampler stores (lists read `a,b`)."""
        return tuple(_label(c) for c in self.choices)

    def value(self, stored: Any) -> Any:
        """A sampler's stored value (a label for choices) as the config value."""
        if self.kind != "choice":
            return int(stored) if self.kind == "int" else float(stored)
        return self.choices[self.labels.index(str(stored))]

    def stored(self, value: Any) -> Any:
        """The inverse of `value`: what the sampler stores for a config value."""
        return _label(value) if self.kind == "choice" else value

    def grid(self, points: int) -> list[Any]:
        """Grid points: every choice, or `points` values across the range (default included)."""
        if self.kind == "choice":
            return list(self.labels)
        if self.log:
            raw = [
                math.exp(math.log(self.low) + (math.log(self.high) - math.log(self.low)) * t)
                for t in _fractions(points)
            ]
        else:
            raw = [self.low + (self.high - self.low) * t for t in _fractions(points)]
        raw.append(self.default)
        if self.kind == "int":
            return sorted({round(v) for v in raw})
        return sorted({float(f"{v:.6g}") for v in raw})

    def describe(self) -> str:
        """One line for `lmrec tune --show-space` and errors."""
        if self.kind == "choice":
            return f"{self.name}: one of {', '.join(self.labels)} (default {_label(self.default)})"
        scale = ", log" if self.log else ""
        return f"{self.name}: {self.kind} {self.low:g}..{self.high:g}{scale} (default {self.default!r})"


def _fractions(points: int) -> list[float]:
    return [0.0] if points <= 1 else [i / (points - 1) for i in range(points)]


def _label(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a study, by name (`ease.reg`, `rerank.mmr_lambda`, `text.fields`)."""

    dimensions: dict[str, Dimension]

    def __iter__(self) -> typing.Iterator[Dimension]:
        return iter(self.dimensions.values())

    def __len__(self) -> int:
        return len(self.dimensions)

    def defaults(self) -> dict[str, Any]:
        """The stored values of every default: the study's first trial."""
        return {d.name: d.stored(d.default) for d in self}

    def override(self, specs: Mapping[str, Any], known: Mapping[str, Dimension]) -> SearchSpace:
        """This space with `specs` applied: NAME -> a spec string or mapping (see `parse_spec`).

        `known` holds every dimension that may be named (declared ones, searched by
        default or not). "off" drops a dimension; a single value fixes it (dropped
        from the search, still applied).
        """
        dims = dict(self.dimensions)
        for name, spec in specs.items():
            if name not in known:
                raise ConfigError(
                    f"--space {name!r}: not a searchable knob; valid: {', '.join(sorted(known))}"
                )
            parsed = parse_spec(known[name], spec)
            if parsed is None:
                dims.pop(name, None)
            else:
                dims[name] = parsed
        return SearchSpace(dims)

    def grid(self, points: int) -> dict[str, list[Any]]:
        """Every dimension's grid points (for a grid search)."""
        return {d.name: d.grid(points) for d in self}


def parse_spec(dim: Dimension, spec: Any) -> Dimension | None:
    """`dim` narrowed or widened by a user's spec; None for "off".

    Strings: `LOW:HIGH`, `LOW:HIGH:log`, `a|b|c` (choices), `default` (as declared),
    `off`, or one value (fixed). Mappings (TOML/JSON): `{low, high, log, step}` or
    `{choices: [...]}`; a list is choices; a number or string is one fixed value.
    """
    where = f"--space {dim.name}"
    if isinstance(spec, str):
        text = spec.strip()
        if text == "default":
            return dim
        if text == "off":
            return None
        if "|" in text:
            return _with_choices(dim, [_parse_value(dim, p) for p in text.split("|")], where)
        if ":" in text and dim.kind != "choice":
            parts = text.split(":")
            log = parts[-1] == "log"
            if log:
                parts = parts[:-1]
            if len(parts) != 2:
                raise ConfigError(f"{where}={spec!r}: expected LOW:HIGH or LOW:HIGH:log")
            spec = {"low": parts[0], "high": parts[1], "log": log}
        else:
            return _with_choices(dim, [_parse_value(dim, text)], where)
    if isinstance(spec, list | tuple):
        return _with_choices(dim, [_parse_value(dim, v) for v in spec], where)
    if isinstance(spec, Mapping):
        if "choices" in spec:
            return _with_choices(dim, [_parse_value(dim, v) for v in spec["choices"]], where)
        if dim.kind == "choice":
            raise ConfigError(f"{where}: a choice knob takes choices ({', '.join(dim.labels)})")
        unknown = set(spec) - {"low", "high", "log", "step"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; use low, high, log, step")
        try:
            low = float(spec.get("low", dim.low))
            high = float(spec.get("high", dim.high))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: low and high must be numbers") from None
        log = bool(spec.get("log", dim.log))
        if not low < high or (log and low <= 0):
            raise ConfigError(f"{where}: need low < high (and low > 0 on a log scale)")
        return _with_default(replace(dim, low=low, high=high, log=log, step=spec.get("step")))
    return _with_choices(dim, [_parse_value(dim, spec)], where)


def _parse_value(dim: Dimension, raw: Any) -> Any:
    if dim.kind == "choice":
        text = _label(raw) if not isinstance(raw, str) else raw.strip()
        if text in dim.labels:
            return dim.choices[dim.labels.index(text)]
        if isinstance(dim.default, tuple):  # a list-valued knob: any list of names
            return tuple(p.strip() for p in text.replace("+", ",").split(",") if p.strip())
        raise ConfigError(f"--space {dim.name}: {text!r} is not one of {', '.join(dim.labels)}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"--space {dim.name}: {raw!r} is not a number") from None
    return int(value) if dim.kind == "int" else value


def _with_choices(dim: Dimension, values: list[Any], where: str) -> Dimension:
    if not values:
        raise ConfigError(f"{where}: no values given")
    labels = list(dict.fromkeys(_label(v) for v in values))
    by_label = {_label(v): v for v in values}
    # A fixed or listed value is searched as choices; its default becomes the first value
    # so the defaults trial stays inside the space the user asked for.
    default = dim.default if _label(dim.default) in labels else by_label[labels[0]]
    return Dimension(dim.name, "choice", default, choices=tuple(by_label[lab] for lab in labels))


def _with_default(dim: Dimension) -> Dimension:
    """`dim` with its range widened (or its choices grown) to hold its default."""
    if dim.kind == "choice":
        if _label(dim.default) in dim.labels:
            return dim
        return replace(dim, choices=(dim.default, *dim.choices))
    if not isinstance(dim.default, int | float) or isinstance(dim.default, bool):
        raise ConfigError(f"{dim.name}: default {dim.default!r} is not a number")
    return replace(dim, low=min(dim.low, dim.default), high=max(dim.high, dim.default))


def _field_choices(annotation: Any) -> tuple[Any, ...]:
    """The values a `Literal[...]`, `bool` or `X | None` of those can take."""
    if annotation is bool:
        return (False, True)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend((None,) if arg is type(None) else _field_choices(arg))
        return tuple(out)
    return ()


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return int in typing.get_args(annotation)
    return False


def config_dimensions(prefix: str, config: type[BaseModel]) -> dict[str, Dimension]:
    """The dimensions a config declares with `Tunable` marks, named `PREFIX.FIELD`."""
    out: dict[str, Dimension] = {}
    for key, field in config.model_fields.items():
        mark = next((m for m in field.metadata if isinstance(m, Tunable)), None)
        if mark is None:
            continue
        name = f"{prefix}.{key}"
        default = field.get_default(call_default_factory=True)
        if mark.choices is not None or mark.low is None:
            choices = mark.choices if mark.choices is not None else _field_choices(field.annotation)
            if not choices:
                raise TypeError(f"{name}: Tunable() needs a range or choices for this type")
            dim = Dimension(name, "choice", default, choices=tuple(choices))
        else:
            kind: Kind = "int" if _is_int(field.annotation) else "float"
            assert mark.high is not None, f"{name}: Tunable needs high with low"
            dim = Dimension(name, kind, default, mark.low, mark.high, mark.log, mark.step)
        out[name] = _with_default(dim)
    return out


def text_dimensions(available_fields: Sequence[str]) -> dict[str, Dimension]:
    """Feature choices: which catalogue text fields the encoder reads, and its runtime."""
    from lmrec.text import ItemTextConfig

    default_fields = tuple(f for f in ItemTextConfig().fields if f in available_fields)
    sets: list[tuple[str, ...]] = []
    for size in range(1, len(available_fields) + 1):
        sets.extend(itertools.combinations(available_fields, size))
    sets = sets[-_MAX_FIELD_SETS:]  # the richest combinations when there are many fields
    dims = {
        f"{FEATURES}.backend": Dimension(
            f"{FEATURES}.backend", "choice", TEXT_BACKENDS[0], choices=TEXT_BACKENDS
        )
    }
    if default_fields:
        dims[f"{FEATURES}.fields"] = _with_default(
            Dimension(f"{FEATURES}.fields", "choice", default_fields, choices=tuple(sets))
        )
    return dims


def space_for(
    model: str,
    config: type[BaseModel],
    *,
    text_fields: Sequence[str] = (),
    groups: Sequence[str] = (),
) -> tuple[SearchSpace, dict[str, Dimension]]:
    """The default search space of `model` (its config's marks) and every knob that may be
    named: the model's, re-ranking's (`rerank.*`) and, given the catalogue's
    `text_fields`, the item-text features (`text.*`). `groups` ("rerank", "text") adds
    those knobs to the default space."""
    from lmrec.ranking.rerank import RerankOptions

    own = config_dimensions(model, config)
    extra = {RERANK: config_dimensions(RERANK, RerankOptions)}
    if text_fields:
        extra[FEATURES] = text_dimensions(text_fields)
    known = dict(own)
    for dims in extra.values():
        known.update(dims)
    chosen = dict(own)
    for group in groups:
        if group not in (RERANK, FEATURES):
            raise ConfigError(f"--search {group!r}: choose among {RERANK}, {FEATURES}")
        if group not in extra:
            raise ConfigError(f"--search {group}: the catalogue has no item text to search over")
        chosen.update(extra[group])
    return SearchSpace(chosen), known
