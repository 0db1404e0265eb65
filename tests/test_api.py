"""The plain Python API: a DataFrame in, a fitted pipeline out, the same answers after save/load."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import lmrec
from lmrec.serving.encoders import HashingEncoder


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Twelve users who like either space or romance films, and the films' catalogue."""
    rows = []
    for u in range(12):
        liked = [f"s{j}" for j in range(6)] if u % 2 == 0 else [f"r{j}" for j in range(6)]
        rows += [
            {"user": f"u{u}", "item": i, "timestamp": t} for t, i in enumerate(liked) if (u + t) % 4
        ]
    items = pd.DataFrame(
        [{"item": f"s{j}", "title": f"space rocket film {j}", "brand": "Orbit"} for j in range(6)]
        + [{"item": f"r{j}", "title": f"romance love film {j}", "brand": "Heart"} for j in range(6)]
    )
    return pd.DataFrame(rows), items


def test_fit_recommend_similar_save_load(tmp_path: Path) -> None:
    events, items = frames()
    pipe = lmrec.fit(events, model="ease", items=items, encoder=HashingEncoder(dim=32))
    got = pipe.recommend("u0", k=3)
    # u0 watched s1, s2, s3, s5: the two space films left come first.
    assert {r.item_id for r in got[:2]} == {"s0", "s4"}
    fresh = pipe.recommend(history=["r1", "r2"], k=2)
    assert all(r.item_id.startswith("r") for r in fresh)
    assert pipe.similar("s1", k=2)[0].item_id.startswith("s")
    loaded = lmrec.load(pipe.save(tmp_path / "v1"), encoder=HashingEncoder(dim=32))
    assert loaded.recommend("u0", k=3) == got
    with pytest.raises(lmrec.LmrecError, match="saved already"):
        loaded.save(tmp_path / "v2")


def test_a_model_that_tunes_on_validation_gets_its_own(tmp_path: Path) -> None:
    events, items = frames()
    pipe = lmrec.fit(
        events,
        model="fused",
        items=items,
        params={"strategies": "ease,itemknn"},
        encoder=HashingEncoder(dim=32),
        rerank={"mmr_lambda": 0.8},
    )
    assert pipe.model.validation_  # type: ignore[attr-defined]  # chosen on held-out validation
    assert pipe.config.rerank.mmr_lambda == 0.8
    manifest = (pipe.save(tmp_path / "f") / "manifest.json").read_text()
    assert '"validation"' in manifest and '"mmr_lambda": 0.8' in manifest
