"""Amazon reviews in the P5 layout (`sequential_data.txt` + `datamaps.json`), e.g. Beauty 2014 5-core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.loaders._io import read_text, require_file
from lmrec.data.loaders.recbole import read_atomic
from lmrec.errors import DataError

__all__ = ["is_p5_folder", "load_amazon_p5"]


def is_p5_folder(folder: Path) -> bool:
    """Whether `folder` holds the P5 files `sequential_data.txt` and `datamaps.json`."""
    return (folder / "sequential_data.txt").is_file()


def load_amazon_p5(
    path: str | Path, cleaning: CleaningOptions | None = None, name: str | None = None
) -> Dataset:
    """Load an Amazon dataset in the P5 layout.

    `sequential_data.txt` has one line per user, `user_idx item_idx ...`, oldest
    first; there are no timestamps, so the position in the line is the time.
    `datamaps.json` maps the indexes to reviewer ids and ASINs, which become the
    user and item ids. The item text comes from a RecBole item file (`*.item`,
    fields like title, categories, brand, price, sales_rank) joined on the ASIN.
    """
    folder = Path(path)
    seq_path = require_file(folder / "sequential_data.txt", "P5 sequence file sequential_data.txt")
    maps_path = require_file(folder / "datamaps.json", "P5 id map datamaps.json")
    try:
        maps = json.loads(read_text(maps_path, "utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", maps_path, exc.lineno) from None
    for key in ("id2user", "id2item"):
        if not isinstance(maps.get(key), dict):
            raise DataError(f"has no {key!r} map", maps_path)
    id2user: dict[str, str] = maps["id2user"]
    id2item: dict[str, str] = maps["id2item"]

    users: list[str] = []
    items: list[str] = []
    positions: list[np.ndarray] = []
    for number, line in enumerate(read_text(seq_path, "utf-8").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise DataError(
                f"expected a user index followed by item indexes, found {line.strip()!r}",
                seq_path,
                number,
            )
        user = id2user.get(tokens[0])
        if user is None:
            raise DataError(
                f"user index {tokens[0]!r} is not in datamaps.json id2user", seq_path, number
            )
        try:
            line_items = [id2item[t] for t in tokens[1:]]
        except KeyError as exc:
            raise DataError(
                f"item index {exc.args[0]!r} is not in datamaps.json id2item", seq_path, number
            ) from None
        users.extend([user] * len(line_items))
        items.extend(line_items)
        positions.append(np.arange(len(line_items), dtype=np.float64))
    if not users:
        raise DataError("holds no interactions", seq_path)
    frame = pd.DataFrame({"user": users, "item": items, "timestamp": np.concatenate(positions)})

    catalog = None
    item_files = sorted(folder.glob("*.item"))
    if item_files:
        catalog = read_atomic(item_files[0]).rename(columns={"item_id": "item"})
        if "item" not in catalog:
            raise DataError(
                f"item file has no item_id field; it has {list(catalog.columns)}", item_files[0]
            )
    return Dataset.from_frames(name or folder.name, frame, catalog, cleaning)
