"""The report from logs: attribution rules, per-unit metrics, the monotone always-valid p, SRM."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmrec.experiments import Experiment, Exposure, experiment_report
from lmrec.experiments.design import allocate
from lmrec.serving.store import Event

DAY = 86_400.0


def _exp(**extra: object) -> Experiment:
    spec = {
        "id": "e",
        "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
        "attribution_window_s": 3600.0,
        **extra,
    }
    return allocate(Experiment.model_validate(spec), [], 0).model_copy(update={"created_at": 0.0})


def _ctr(report: dict) -> dict:
    return next(c for c in report["comparisons"] if c["metric"] == "ctr")


def test_attribution_by_request_id_or_window_and_shown_item() -> None:
    exp = _exp()
    shown = [
        Exposure("r1", "e", "a", "u1", 100.0, ("i1", "i2")),
        Exposure("r2", "e", "a", "u2", 100.0, ("i1", "i2")),
        Exposure("r3", "e", "b", "u3", 100.0, ("i3",)),
        Exposure("r4", "e", "b", "u4", 100.0, ("i3",)),
    ]
    events = [
        Event("x1", "u1", "i9", "click", 200.0, request_id="r1"),  # tagged: counts
        Event("x2", "u2", "i2", "click", 200.0),  # shown item, in the window: counts
        Event("x3", "u2", "i2", "click", 100.0 + 3601.0),  # past the window: not
        Event("x4", "u3", "i9", "click", 150.0),  # never shown: not
        Event("x5", "u4", "i3", "click", 150.0),  # counts
        Event("x6", "u4", "i3", "purchase", 160.0, value=12.5),  # counts, with revenue
        Event("x7", "u9", "i3", "click", 150.0),  # not in the experiment
    ]
    report = experiment_report(exp, shown, events, now=DAY)
    assert report["units"] == {"a": 2, "b": 2} and report["exposures"] == {"a": 2, "b": 2}
    ctr = _ctr(report)["plain"]
    assert ctr["mean_a"] == pytest.approx(1.0) and ctr["mean_b"] == pytest.approx(0.5)
    revenue = next(c for c in report["comparisons"] if c["metric"] == "revenue_per_user")
    assert revenue["plain"]["mean_b"] == pytest.approx(6.25) and revenue["plain"]["mean_a"] == 0
    events_per_user = next(c for c in report["comparisons"] if c["metric"] == "events_per_user")
    assert events_per_user["plain"]["mean_a"] == pytest.approx(1.5)  # u1: 1, u2: 2


def test_events_after_the_stop_count_until_the_window_closes() -> None:
    exp = _exp().model_copy(update={"stopped_at": 1000.0})
    shown = [Exposure(f"r{i}", "e", "ab"[i % 2], f"u{i}", 900.0, ("i1",)) for i in range(4)]
    late = [
        Event("x0", "u0", "i1", "click", 1100.0),  # after the stop, 200 s after its list
        Event("x1", "u1", "i1", "click", 2900.0),  # 2,000 s after its list: in the window
        Event("x2", "u2", "i1", "click", 4600.0),  # 3,700 s after: the window has closed
    ]
    report = experiment_report(exp, shown, late, now=DAY)
    ctr = _ctr(report)["plain"]
    assert ctr["mean_a"] == 0.5 and ctr["mean_b"] == 0.5  # a: u0 yes, u2 no; b: u1 yes, u3 no
    assert report["status"] == "stopped"


def _traffic(n: int, p_a: float, p_b: float, seed: int, days: int = 10):
    """n units over `days`, one list a day, clicking with a per-unit propensity."""
    rng = np.random.default_rng(seed)
    shown, events = [], []
    for u in range(n):
        variant = "a" if u % 2 else "b"
        base = rng.beta(2, 8)
        propensity = base * (p_a if variant == "a" else p_b) / 0.2
        active = rng.random() < 0.9
        # Pre-period events (CUPED's covariate) track each unit's propensity before the
        # experiment: the treatment cannot reach back into them.
        for d in range(int(rng.poisson(20 * base))):
            events.append(Event(f"pre{u}-{d}", f"u{u}", "i0", "click", -DAY * (1 + d % 20)))
        for d in range(days):
            t = d * DAY + 10.0
            shown.append(Exposure(f"r{u}-{d}", "e", variant, f"u{u}", t, ("i1", "i2")))
            if active and rng.random() < propensity:
                events.append(Event(f"c{u}-{d}", f"u{u}", "i1", "click", t + 5.0))
    events.sort(key=lambda e: e.timestamp)
    return shown, events


def test_the_always_valid_p_only_falls_and_a_real_lift_is_found() -> None:
    shown, events = _traffic(600, 0.2, 0.3, seed=1)
    report = experiment_report(_exp(), shown, events, now=10 * DAY)
    ctr = _ctr(report)
    ps = [p["seq_p_value"] for p in ctr["timeline"]]
    assert len(ps) >= 9 and all(b <= a for a, b in itertools.pairwise(ps))
    assert ctr["always_valid_p"] == ps[-1] < 0.05 and ctr["significant"] is True
    assert ctr["plain"]["lift"] == pytest.approx(
        ctr["plain"]["mean_b"] / ctr["plain"]["mean_a"] - 1
    )
    # CUPED on the pre-period narrows the interval and keeps the estimate honest.
    plain, cuped = ctr["plain"], ctr["cuped"]
    assert cuped["method"] == "cuped"
    assert cuped["ci"][1] - cuped["ci"][0] < plain["ci"][1] - plain["ci"][0]
    assert ctr["method"] == "cuped"


def test_sample_ratio_mismatch_is_flagged() -> None:
    shown, events = _traffic(2000, 0.2, 0.2, seed=2, days=1)
    balanced = experiment_report(_exp(), shown, events, now=DAY)
    assert balanced["srm"]["flagged"] is False
    # Lose a fifth of arm b's units (a client that never logs), as a broken pipeline would.
    lost = {f"u{u}" for u in range(0, 2000, 2) if u % 10 == 0}
    broken = experiment_report(_exp(), [x for x in shown if x.unit not in lost], events, now=DAY)
    assert broken["srm"]["flagged"] is True and broken["srm"]["p_value"] < 0.001


def test_too_little_data_is_said_not_crashed() -> None:
    report = experiment_report(_exp(), [Exposure("r", "e", "a", "u", 1.0, ("i",))], [], now=2.0)
    assert "error" in _ctr(report)["plain"] and _ctr(report)["timeline"] == []
    empty = experiment_report(_exp(), [], [], now=2.0)
    assert empty["srm"] is None and empty["exposures_total"] == 0


def test_reading_later_never_raises_the_always_valid_p() -> None:
    """An early, strong difference drowned by later null traffic stays found (fixed looks)."""
    rng = np.random.default_rng(3)
    shown, events = [], []
    n = 0
    for day, units, p_a, p_b in [(0, 300, 0.2, 0.6), *[(d, 30, 0.3, 0.3) for d in range(1, 131)]]:
        for _ in range(units):
            n += 1
            variant = "ab"[n % 2]
            t = day * DAY + 60.0 + n % 600
            shown.append(Exposure(f"r{n}", "e", variant, f"u{n}", t, ("i1",)))
            if rng.random() < (p_a if variant == "a" else p_b):
                events.append(Event(f"c{n}", f"u{n}", "i1", "click", t + 1.0))
            elif rng.random() < 0.5:  # some variance in every arm
                events.append(Event(f"v{n}", f"u{n}", "i1", "view", t + 1.0))
    exp = _exp().model_copy(update={"secondary_metrics": []})
    reads = [experiment_report(exp, shown, events, now=d * DAY) for d in (2, 10, 125, 131)]
    ps = [_ctr(r)["always_valid_p"] for r in reads]
    assert ps[0] < 0.05 and all(b <= a for a, b in itertools.pairwise(ps)), ps
    assert all(_ctr(r)["significant"] for r in reads)
