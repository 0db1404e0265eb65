"""Item text composition: defaults, templates, and fallback for empty items."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from lmrec.data.catalog import Catalog
from lmrec.errors import ConfigError
from lmrec.text import ItemTextConfig, item_texts


@pytest.fixture()
def catalog() -> Catalog:
    return Catalog(
        pd.DataFrame(
            {
                "item": ["a", "b", "c", "d"],
                "title": ["Red Lipstick", "", "", "Garden Hose"],
                "brand": ["Acme", "Acme", "", ""],
                "categories": [["Beauty", "Lips"], [], [], ["Garden"]],
                "price": [5.0, 7.5, float("nan"), 12.0],
            }
        )
    )


def test_default_joins_non_empty_fields(catalog: Catalog) -> None:
    texts, stats = item_texts(catalog)
    assert texts[0] == "Red Lipstick. Acme. Beauty, Lips"
    assert texts[3] == "Garden Hose. Garden"
    assert stats.n_items == 4


def test_template_and_labels(catalog: Catalog) -> None:
    texts, _ = item_texts(
        catalog, ItemTextConfig(template="{title} by {brand} ({categories}), ${price}")
    )
    assert texts[0] == "Red Lipstick by Acme (Beauty, Lips), $5.0"
    texts, _ = item_texts(catalog, ItemTextConfig(fields=("title", "brand"), labels=True))
    assert texts[0] == "Title: Red Lipstick. Brand: Acme"


def test_empty_items_fall_back_and_are_counted(catalog: Catalog, caplog) -> None:
    config = ItemTextConfig(fields=("title",))
    with caplog.at_level(logging.WARNING, logger="lmrec.text"):
        texts, stats = item_texts(catalog, config)
    # b has no title but a brand and a price; c has nothing at all but its id.
    assert texts[1] == "Acme. 7.5"
    assert texts[2] == "c"
    assert stats.fallback_items == (1, 2)
    assert stats.id_only_items == (2,)
    assert (stats.n_fallback, stats.n_id_only) == (2, 1)
    assert "2 with empty title" in caplog.text


def test_id_fallback_uses_given_ids_or_index() -> None:
    empty = Catalog.empty(2)
    texts, stats = item_texts(empty)
    assert texts == ["item 0", "item 1"]
    assert stats.n_id_only == 2
    texts, _ = item_texts(empty, item_ids=["x1", "x2"])
    assert texts == ["x1", "x2"]


def test_long_text_is_cut_at_max_chars() -> None:
    cat = Catalog(pd.DataFrame({"title": ["t"], "description": ["word " * 2000]}))
    texts, stats = item_texts(cat, ItemTextConfig(max_chars=100))
    assert len(texts[0]) == 100
    assert stats.truncated == 1


def test_config_errors_say_what_to_do(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match=r"colour.*available: title"):
        item_texts(catalog, ItemTextConfig(fields=("title", "colour")))
    with pytest.raises(ValueError, match="names no field"):
        ItemTextConfig(template="just words")
    with pytest.raises(ValueError, match="plain column name"):
        ItemTextConfig(template="{title.upper}")
    with pytest.raises(ValueError, match="extra"):
        ItemTextConfig(feilds=("title",))  # type: ignore[call-arg]
