"""Item text: which catalogue fields the encoder reads, and in what form."""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmrec.data.catalog import TEXT_FIELDS, Catalog
from lmrec.errors import ConfigError

__all__ = ["ItemTextConfig", "TextStats", "item_texts"]

logger = logging.getLogger("lmrec.text")

#: Catalogue columns that are ids, not descriptions.
_ID_COLUMNS = ("item", "item_id")


class ItemTextConfig(BaseModel):
    """How an item becomes the text the encoder reads; unknown keys fail.

    Without `template`, the non-empty values of `fields` are joined with
    `separator` (with `Field: ` labels when `labels` is true). With `template`,
    it is filled like `str.format`, e.g. `"{title}. Brand: {brand}. {categories}"`;
    any catalogue column may be named (title, brand, categories, tags,
    description, summary, or attributes such as price). List fields are joined
    with ", ". Texts are cut at `max_chars` characters (the encoder also
    truncates at its token limit).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: tuple[str, ...] = TEXT_FIELDS
    template: str | None = None
    separator: str = ". "
    labels: bool = False
    max_chars: int | None = Field(default=2000, gt=0)

    @field_validator("fields")
    @classmethod
    def _some_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one field, e.g. ['title']")
        return value

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = _template_fields(value)
        if not names:
            raise ValueError("the template names no field; write e.g. '{title}. {categories}'")
        for name in names:
            if not name.isidentifier():
                raise ValueError(f"template field {{{name}}} must be a plain column name")
        return value

    def referenced_fields(self) -> tuple[str, ...]:
        """The catalogue columns this config reads."""
        return tuple(_template_fields(self.template)) if self.template else self.fields


def _template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template: {exc}") from None
    return [name for _, name, _, _ in parsed if name is not None]


@dataclass(frozen=True)
class TextStats:
    """What happened while composing item texts.

    `fallback_items` are indexes of items whose configured fields were all
    empty: they got text from whatever other fields they have, or only their
    id (`id_only_items`). `truncated` counts texts cut at `max_chars`.
    """

    n_items: int
    fallback_items: tuple[int, ...] = ()
    id_only_items: tuple[int, ...] = ()
    truncated: int = 0
    fields: tuple[str, ...] = field(default=())

    @property
    def n_fallback(self) -> int:
        """Items whose configured fields were all empty (including id-only ones)."""
        return len(self.fallback_items)

    @property
    def n_id_only(self) -> int:
        """Items with no text at all, described by their id alone."""
        return len(self.id_only_items)

    def summary(self) -> str:
        """One line for logs and reports."""
        return (
            f"{self.n_items} items; {self.n_fallback} with empty {'/'.join(self.fields)} "
            f"used other fields ({self.n_id_only} only their id); {self.truncated} truncated"
        )


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(s for s in (str(v).strip() for v in value) if s)
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays and scalars
        return _as_text(value.tolist())
    return str(value).strip()


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _join(pairs: Sequence[tuple[str, str]], config: ItemTextConfig) -> str:
    parts = [f"{_label(k)}: {v}" if config.labels else v for k, v in pairs if v]
    return config.separator.join(parts)


def item_texts(
    catalog: Catalog,
    config: ItemTextConfig | None = None,
    item_ids: Sequence[str] | None = None,
) -> tuple[list[str], TextStats]:
    """The text of every catalogue item (row order) and what fell back.

    An item whose configured fields are all empty is described by whatever
    other fields it has, else by its id (`item_ids`, else the catalogue's
    `item` column, else "item <index>"); such items are counted in the stats
    and logged, never an error. A field the catalogue does not have is a
    `ConfigError`.
    """
    config = config or ItemTextConfig()
    frame = catalog.frame
    wanted = config.referenced_fields()
    missing = [f for f in wanted if f not in frame.columns]
    if missing:
        available = ", ".join(str(c) for c in frame.columns if c not in _ID_COLUMNS)
        raise ConfigError(
            f"item text field(s) {', '.join(missing)} not in the catalogue; available: {available}"
        )
    if item_ids is not None and len(item_ids) != len(frame):
        raise ConfigError(f"item_ids has {len(item_ids)} ids for {len(frame)} catalogue items")
    columns = {str(c): frame[c].tolist() for c in frame.columns}
    others = [f for f in TEXT_FIELDS if f in columns] + [
        c for c in columns if c not in TEXT_FIELDS and c not in _ID_COLUMNS
    ]
    id_column = next((c for c in _ID_COLUMNS if c in columns), None)
    texts: list[str] = []
    fallback: list[int] = []
    id_only: list[int] = []
    truncated = 0
    for i in range(len(frame)):
        values = {name: _as_text(columns[name][i]) for name in wanted}
        if any(values.values()):
            if config.template is not None:
                text = config.template.format(**values)
            else:
                text = _join([(f, values[f]) for f in config.fields], config)
        else:
            fallback.append(i)
            text = _join([(f, _as_text(columns[f][i])) for f in others], config)
            if not text:
                id_only.append(i)
                if item_ids is not None:
                    text = str(item_ids[i])
                elif id_column is not None and _as_text(columns[id_column][i]):
                    text = _as_text(columns[id_column][i])
                else:
                    text = f"item {i}"
        text = " ".join(text.split())
        if config.max_chars is not None and len(text) > config.max_chars:
            text = text[: config.max_chars]
            truncated += 1
        texts.append(text)
    stats = TextStats(len(frame), tuple(fallback), tuple(id_only), truncated, tuple(wanted))
    if fallback:
        logger.warning("item text: %s", stats.summary())
    return texts, stats
