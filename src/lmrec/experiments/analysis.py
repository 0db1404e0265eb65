"""From the exposure log and the event log to an experiment's report.

Attribution: an event counts for the served list whose `request_id` it carries;
without one, for the unit's latest list within the attribution window that
showed the event's item. A unit's metrics (per unit, so variances are over users,
not requests):

- `ctr`: attributed clicks over lists served (a ratio metric, delta method);
- `conversion`: whether the unit made an attributed purchase (two proportions);
- `revenue_per_user`: the `value` of its attributed purchases;
- `events_per_user`: its events of any kind since its first list.

CUPED's covariate is the same quantity over the 28 days before the experiment
started. Every look at the data gives an always-valid p-value; the report keeps
their running minimum over a fixed timeline of looks (hourly for three days,
then daily), so it may be read at any time. Interleaving reports the preference
test on clicks credited to each team.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmrec.experiments import stats
from lmrec.experiments.assignment import INTERLEAVED
from lmrec.experiments.design import Experiment, Exposure

__all__ = ["PRE_PERIOD_S", "UnitTable", "attribute", "experiment_report"]

#: How far before the start CUPED's covariates look.
PRE_PERIOD_S = 28 * 86_400.0
_DAY = 86_400.0
_HOUR = 3_600.0
_KINDS = ("click", "purchase")


@dataclass(frozen=True)
class _Attributed:
    """The logs as arrays: exposures and events, each tagged with its unit's index."""

    units: list[str]
    variant_of_unit: np.ndarray  # index into experiment.variants (or 0 for interleaving)
    first_exposure: np.ndarray  # per unit
    exposure_time: np.ndarray
    exposure_unit: np.ndarray
    event_time: np.ndarray
    event_unit: np.ndarray
    event_kind: np.ndarray  # 0 other, 1 click, 2 purchase
    event_value: np.ndarray
    event_attributed: np.ndarray  # bool
    event_team: np.ndarray  # 0 none, 1 a, 2 b


def attribute(
    experiment: Experiment, exposures: Sequence[Exposure], events: Sequence[Any]
) -> _Attributed:
    """Tag every event with its unit and, when it responds to a list of this experiment, that list.

    `events` are `lmrec.serving.store.Event`-like (user_id, item_id, type,
    timestamp, value, request_id), oldest first.
    """
    names = [v.name for v in experiment.variants]
    # A variant the definition does not name (a hand-edited log) is left out, not
    # counted as the control.
    exposures = [x for x in exposures if x.variant in names or x.variant == INTERLEAVED]
    index: dict[str, int] = {}
    variant: list[int] = []
    first: list[float] = []
    by_request: dict[str, Exposure] = {}
    per_unit: dict[str, list[Exposure]] = {}
    for x in exposures:
        if x.unit not in index:
            index[x.unit] = len(index)
            variant.append(names.index(x.variant) if x.variant in names else 0)  # 0: interleaved
            first.append(x.timestamp)
        by_request[x.request_id] = x
        per_unit.setdefault(x.unit, []).append(x)
    times = {u: [x.timestamp for x in xs] for u, xs in per_unit.items()}
    window = experiment.attribution_window_s
    rows: list[tuple[float, int, int, float, bool, int]] = []
    for e in events:
        u = index.get(e.user_id)
        if u is None:
            continue
        kind = 1 + _KINDS.index(e.type) if e.type in _KINDS else 0
        shown = by_request.get(e.request_id) if e.request_id else None
        if shown is None and e.item_id is not None and kind:
            shown = _latest_showing(per_unit[e.user_id], times[e.user_id], e, window)
        team = 0
        if shown is not None and shown.teams is not None and e.item_id in shown.items:
            team = 1 if shown.teams[shown.items.index(e.item_id)] == "a" else 2
        rows.append((e.timestamp, u, kind, float(e.value or 0.0), shown is not None, team))
    ev = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return _Attributed(
        units=list(index),
        variant_of_unit=np.array(variant, dtype=np.int64),
        first_exposure=np.array(first, dtype=np.float64),
        exposure_time=np.array([x.timestamp for x in exposures], dtype=np.float64),
        exposure_unit=np.array([index[x.unit] for x in exposures], dtype=np.int64),
        event_time=ev[:, 0],
        event_unit=ev[:, 1].astype(np.int64),
        event_kind=ev[:, 2].astype(np.int64),
        event_value=ev[:, 3],
        event_attributed=ev[:, 4].astype(bool),
        event_team=ev[:, 5].astype(np.int64),
    )


def _latest_showing(
    shown: list[Exposure], times: list[float], event: Any, window: float
) -> Exposure | None:
    """The unit's latest list at or before the event, within the window, that showed its item."""
    i = bisect.bisect_right(times, event.timestamp) - 1
    while i >= 0 and event.timestamp - times[i] <= window:
        if event.item_id in shown[i].items:
            return shown[i]
        i -= 1
    return None


@dataclass(frozen=True)
class UnitTable:
    """Per-unit totals at one look (`until`), with the pre-period covariates."""

    variant: np.ndarray
    exposures: np.ndarray
    clicks: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    events: np.ndarray
    pre_clicks: np.ndarray
    pre_purchases: np.ndarray
    pre_revenue: np.ndarray
    pre_events: np.ndarray
    credit_a: np.ndarray
    credit_b: np.ndarray


def _table(data: _Attributed, start: float, until: float) -> UnitTable:
    n = len(data.units)
    seen = data.first_exposure <= until
    keep = np.flatnonzero(seen)

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else weights[mask]
        return np.bincount(data.event_unit[mask], weights=w, minlength=n)[keep]

    t = data.event_time
    during = (t >= data.first_exposure[data.event_unit]) & (t <= until)
    # Attributed events may follow the last list by up to the window, not past `until`.
    credited = during & data.event_attributed
    before = (t < start) & (t >= start - PRE_PERIOD_S)
    click, purchase = data.event_kind == 1, data.event_kind == 2
    shown = data.exposure_time <= until
    return UnitTable(
        variant=data.variant_of_unit[keep],
        exposures=np.bincount(data.exposure_unit[shown], minlength=n)[keep].astype(np.float64),
        clicks=count(credited & click),
        purchases=count(credited & purchase),
        revenue=count(credited & purchase, data.event_value),
        events=count(during),
        pre_clicks=count(before & click),
        pre_purchases=count(before & purchase),
        pre_revenue=count(before & purchase, data.event_value),
        pre_events=count(before),
        credit_a=count(credited & click & (data.event_team == 1)),
        credit_b=count(credited & click & (data.event_team == 2)),
    )


def _compare(
    metric: str,
    table: UnitTable,
    *,
    control: int,
    treated: int,
    alpha: float,
    n_star: float | None,
    cuped: bool,
) -> stats.Comparison:
    a, b = table.variant == control, table.variant == treated
    kw: dict[str, Any] = {"metric": metric, "alpha": alpha, "n_star": n_star}
    if metric == "ctr":
        cov = (table.pre_clicks[a], table.pre_clicks[b]) if cuped else (None, None)
        return stats.ratio(
            table.clicks[a],
            table.exposures[a],
            table.clicks[b],
            table.exposures[b],
            covariate_a=cov[0],
            covariate_b=cov[1],
            **kw,
        )
    if metric == "conversion":
        ya, yb = (table.purchases[a] > 0).astype(float), (table.purchases[b] > 0).astype(float)
        if cuped:
            xa, xb = (
                (table.pre_purchases[a] > 0).astype(float),
                (table.pre_purchases[b] > 0).astype(float),
            )
            return stats.welch(ya, yb, covariate_a=xa, covariate_b=xb, **kw)
        return stats.two_proportions(int(ya.sum()), ya.size, int(yb.sum()), yb.size, **kw)
    y, x = {
        "revenue_per_user": (table.revenue, table.pre_revenue),
        "events_per_user": (table.events, table.pre_events),
    }[metric]
    if cuped:
        return stats.welch(y[a], y[b], covariate_a=x[a], covariate_b=x[b], **kw)
    return stats.welch(y[a], y[b], **kw)


def _attempt(compute: Callable[[], stats.Comparison]) -> dict[str, Any]:
    """A comparison as a dict, or why there is none yet (too few units, no variance)."""
    try:
        return compute().to_dict()
    except ValueError as exc:
        return {"error": str(exc)}


def _looks(start: float, end: float) -> list[float]:
    """When the data is looked at: every hour for the first 3 days, then every day, and `end`.

    The grid depends on the start only, so a later read looks at every point an
    earlier read did (plus newer ones) and the running minimum of the always-valid
    p-value can only fall from one read to the next (except against the previous
    read's own last look, the partial hour or day it was made in).
    """
    hours = start + _HOUR * np.arange(1, 72 + 1)
    days = start + _DAY * np.arange(4, max(4, int((end - start) // _DAY) + 1))
    grid = np.concatenate([hours, days])
    return [*grid[grid < end].tolist(), end]


def experiment_report(
    experiment: Experiment, exposures: Sequence[Exposure], events: Sequence[Any], now: float
) -> dict[str, Any]:
    """The report of one experiment as of `now` (JSON-safe)."""
    start = experiment.started_at()
    ended = experiment.ended_at()
    # Events keep counting for lists shown before the stop until the window closes.
    until = now if ended is None else min(now, ended + experiment.attribution_window_s)
    data = attribute(experiment, exposures, events)
    table = _table(data, start, until)
    report: dict[str, Any] = {
        "experiment": experiment.model_dump(mode="json"),
        "status": experiment.status_at(now),
        "as_of": now,
        "exposures": {v.name: 0 for v in experiment.variants},
        "units": {v.name: 0 for v in experiment.variants},
    }
    report["exposures_total"] = int(table.exposures.sum())
    alpha, n_star = experiment.alpha, experiment.expected_units
    looks = _looks(start, max(until, start + 1.0))
    if experiment.type == "interleaving":
        return report | _interleaving(data, table, start, looks, alpha, n_star)
    for i, v in enumerate(experiment.variants):
        report["units"][v.name] = int(np.sum(table.variant == i))
        report["exposures"][v.name] = int(table.exposures[table.variant == i].sum())
    counts = [report["units"][v.name] for v in experiment.variants]
    report["srm"] = (
        stats.srm(counts, [v.share for v in experiment.variants]).to_dict() if sum(counts) else None
    )
    comparisons: list[dict[str, Any]] = []
    for metric in experiment.metrics:
        for j in range(1, len(experiment.variants)):
            entry: dict[str, Any] = {
                "metric": metric,
                "variant": experiment.variants[j].name,
                "control": experiment.variants[0].name,
            }
            plain = functools.partial(
                _compare, metric, control=0, treated=j, alpha=alpha, n_star=n_star, cuped=False
            )
            entry["plain"] = _attempt(functools.partial(plain, table))
            entry["cuped"] = _attempt(functools.partial(plain, table, cuped=True))
            # The timeline's method is the headline's: CUPED when it could run on all the
            # data. A look where it cannot yet is skipped, not filled in by the plain
            # test: the running minimum is over one sequence of one statistic.
            cuped = "error" not in entry["cuped"]
            entry["timeline"] = _timeline(data, start, looks, functools.partial(plain, cuped=cuped))
            comparisons.append(entry)
    _decide(comparisons, alpha)
    report["comparisons"] = comparisons
    report["primary_metric"] = experiment.primary_metric
    return report


def _timeline(
    data: _Attributed,
    start: float,
    looks: list[float],
    compare: Callable[[UnitTable], stats.Comparison],
) -> list[dict[str, Any]]:
    """The comparison at every look, with the running minimum of the always-valid p-value."""
    points: list[dict[str, Any]] = []
    best: float | None = None
    for t in looks:
        try:
            c = compare(_table(data, start, t))
        except ValueError:
            continue
        best = stats.sequential_p(best, c.seq_p_value)
        points.append(
            {
                "t": t,
                "n": c.n_a + c.n_b,
                "mean_a": c.mean_a,
                "mean_b": c.mean_b,
                "diff": c.diff,
                "lift": c.lift,
                "lift_ci": list(c.lift_ci),
                "seq_ci": list(c.seq_ci),
                "ci": list(c.ci),
                "seq_p_value": best,
            }
        )
    return [stats.json_safe(p) for p in points]


def _decide(comparisons: list[dict[str, Any]], alpha: float) -> None:
    """Headline figures: CUPED when it could run, the sequential p, and BH over all metrics."""
    usable = []
    for entry in comparisons:
        entry["always_valid_p_bh"] = None
        entry["significant"] = None
    for entry in comparisons:
        chosen = entry["cuped"] if "error" not in entry["cuped"] else entry["plain"]
        entry["method"] = chosen.get("method")
        timeline = entry["timeline"]
        entry["always_valid_p"] = timeline[-1]["seq_p_value"] if timeline else None
        entry["p_value"] = chosen.get("p_value")
        if entry["always_valid_p"] is not None:
            usable.append(entry)
    if not usable:
        return
    adjusted, rejected = stats.benjamini_hochberg(
        [e["always_valid_p"] for e in usable], alpha=alpha
    )
    for entry, p, r in zip(usable, adjusted, rejected, strict=True):
        entry["always_valid_p_bh"] = float(p)
        entry["significant"] = bool(r)


def _interleaving(
    data: _Attributed,
    table: UnitTable,
    start: float,
    looks: list[float],
    alpha: float,
    n_star: float | None,
) -> dict[str, Any]:
    def compare(t: UnitTable) -> stats.Comparison:
        return stats.preference(t.credit_a, t.credit_b, alpha=alpha, n_star=n_star)

    units = int(table.variant.size)
    entry: dict[str, Any] = {"metric": "preference", "variant": "b", "control": "a"}
    entry["plain"] = _attempt(lambda: compare(table))
    entry["cuped"] = {"error": "CUPED does not apply to a preference test"}
    entry["timeline"] = _timeline(data, start, looks, compare)
    _decide([entry], alpha)
    return {
        "units": {"interleaved": units},
        "exposures": {"interleaved": int(table.exposures.sum())},
        "clicks": {"a": int(table.credit_a.sum()), "b": int(table.credit_b.sum())},
        "srm": None,
        "comparisons": [entry],
        "primary_metric": "preference",
    }
