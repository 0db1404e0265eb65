"""An experiment's report (`experiment_report`) as a self-contained HTML page.

House style of `lmrec.evaluation.report`: matplotlib PNGs embedded as base64, plain
tables, nothing fetched. The page says what was run (variants, shares, knobs), whether
units reached the arms in the configured shares (SRM), one table per metric with the
fixed-horizon and always-valid figures, the primary metric's difference over time with
both bands, and every metric's per-variant values. Whatever the statistics could not
compute yet (an "error" entry, an empty timeline) reads "not enough data yet".
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmrec.evaluation.report import _figure_png

__all__ = ["write_report"]

_NOT_YET = "not enough data yet"
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}img{margin:0.5em 0}"
    ".flag{color:#b00;font-weight:bold}.note{color:#555}"
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _utc(t: float | None) -> str:
    if t is None:
        return "—"
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec)


def _interval(ci: Sequence[Any] | None, spec: str = ".4g") -> str:
    if not ci or any(v is None for v in ci):
        return ""
    return f" <small>[{format(ci[0], spec)}, {format(ci[1], spec)}]</small>"


def _headline(entry: dict[str, Any]) -> dict[str, Any]:
    """The comparison the report's headline figures come from: CUPED when it ran, else plain."""
    cuped = entry.get("cuped") or {}
    return cuped if cuped and "error" not in cuped else entry.get("plain") or {}


def _header(report: dict[str, Any]) -> str:
    exp = report["experiment"]
    units, exposures = report.get("units", {}), report.get("exposures", {})
    rows = []
    for v in exp["variants"]:
        knobs = json.dumps(v.get("knobs") or {}, sort_keys=True)
        model = v.get("model_path") or "serving model"
        counts = f"<td>{units.get(v['name'], '')}</td><td>{exposures.get(v['name'], '')}</td>"
        rows.append(
            f"<tr><td>{_e(v['name'])}</td><td>{v['share']:.2%}</td><td>{_e(knobs)}</td>"
            f"<td>{_e(model)}</td>{counts if exp['type'] == 'ab' else '<td></td><td></td>'}</tr>"
        )
    if exp["type"] == "interleaving":
        clicks = report.get("clicks", {})
        team_a, team_b = (_e(v["name"]) for v in exp["variants"])
        counts_note = (
            f"<p>Every unit sees one list drafted from both arms (team a: {team_a}, team b: "
            f"{team_b}): {units.get('interleaved', 0)} units, {exposures.get('interleaved', 0)} "
            f"lists; credited clicks: a {clicks.get('a', 0)}, b {clicks.get('b', 0)}.</p>"
        )
    else:
        counts_note = f"<p>{report.get('exposures_total', 0)} lists served in all.</p>"
    ends = [t for t in (exp.get("stopped_at"), exp.get("stop_at")) if t is not None]
    end = _utc(min(ends)) if ends else "not scheduled"
    return f"""<p>{_e(exp["type"])} experiment, <b>{_e(report["status"])}</b>, as of
{_e(_utc(report["as_of"]))}. Created {_e(_utc(exp.get("created_at")))}; start
{_e(_utc(exp.get("start_at") or exp.get("created_at")))}; end {_e(end)}. Layer {_e(exp["layer"])},
{exp["traffic"]:.2%} of its traffic; alpha {exp["alpha"]:g}; primary metric
{_e(report.get("primary_metric", exp["primary_metric"]))}.</p>
<table><tr><th>variant</th><th>share</th><th>knobs</th><th>model</th><th>units</th><th>lists</th></tr>
{"".join(rows)}</table>{counts_note}"""


def _srm(report: dict[str, Any]) -> str:
    exp = report["experiment"]
    if exp["type"] == "interleaving":
        return "<p>Does not apply: every unit sees both arms.</p>"
    srm = report.get("srm")
    if not srm:
        return f"<p>{_NOT_YET}: no unit has been served a list.</p>"
    names = [v["name"] for v in exp["variants"]]
    arms = ", ".join(
        f"{_e(n)} {report['units'].get(n, 0)} (expected {e:.1f})"
        for n, e in zip(names, srm["expected"], strict=True)
    )
    p = _num(srm.get("p_value"), ".3g")
    if srm.get("flagged"):
        return (
            f'<p class="flag">Sample-ratio mismatch (p = {p}): units did not reach the arms in '
            f"the configured shares. Units per arm: {arms}. Until the cause is found (assignment, "
            "logging, bots, a variant that fails more often), the comparisons below are not "
            "trustworthy.</p>"
        )
    return (
        f"<p>No sample-ratio mismatch (p = {p}; flagged only below 0.001): units reached the "
        f"arms in the configured shares. Units per arm: {arms}.</p>"
    )


_COLUMNS = (
    "variant",
    "control mean",
    "variant mean",
    "units (control / variant)",
    "diff [fixed CI]",
    "lift [CI]",
    "p",
    "always-valid p",
    "BH-adjusted",
    "method",
    "significant",
)


def _row(entry: dict[str, Any]) -> str:
    name = f"<td>{_e(entry['variant'])} vs {_e(entry['control'])}</td>"
    plain, chosen = entry.get("plain") or {}, _headline(entry)
    if "error" in chosen or not chosen:
        why = chosen.get("error") or plain.get("error") or ""
        return (
            f'{name}<td colspan="{len(_COLUMNS) - 1}">{_NOT_YET}'
            f' <small class="note">({_e(why)})</small></td>'
        )
    means = plain if "error" not in plain else chosen
    method = "CUPED" if chosen.get("method") == "cuped" else f"plain ({chosen.get('method')})"
    flag = entry.get("significant")  # absent while no always-valid p exists
    significant = "n/a" if flag is None else ("yes" if flag else "no")
    lift = chosen.get("lift")
    cells = [
        _num(means.get("mean_a")),
        _num(means.get("mean_b")),
        f"{means.get('n_a')} / {means.get('n_b')}",
        _num(chosen.get("diff")) + _interval(chosen.get("ci")),
        (_num(lift, "+.2%") + _interval(chosen.get("lift_ci"), "+.2%"))
        if lift is not None
        else "n/a",
        _num(entry.get("p_value"), ".3g"),
        _num(entry.get("always_valid_p"), ".3g"),
        _num(entry.get("always_valid_p_bh"), ".3g"),
        _e(method),
        significant,
    ]
    return name + "".join(f"<td>{c}</td>" for c in cells)


def _tables(report: dict[str, Any]) -> str:
    comparisons = report.get("comparisons") or []
    if not comparisons:
        return f"<p>{_NOT_YET}.</p>"
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    out = []
    for metric in dict.fromkeys(c["metric"] for c in comparisons):
        rows = "".join(f"<tr>{_row(c)}</tr>" for c in comparisons if c["metric"] == metric)
        out.append(f"<h3>{_e(metric)}</h3><table><tr>{head}</tr>{rows}</table>")
    if "preference" in (c["metric"] for c in comparisons):
        out.append(
            '<p class="note">preference: over the units with a credited click, the shares '
            "preferring team a (control mean) and team b (variant mean); diff = b − a; p: the "
            "exact sign test.</p>"
        )
    return "".join(out)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _start(report: dict[str, Any], timeline: list[dict[str, Any]]) -> float:
    exp = report["experiment"]
    start = exp.get("start_at") or exp.get("created_at")
    return float(start) if start is not None else float(timeline[0]["t"])


def _timeline_figure(report: dict[str, Any], entry: dict[str, Any]) -> str:
    """The primary metric's difference at every look, its confidence sequence and fixed CI."""
    plt = _pyplot()
    points = entry["timeline"]
    start = _start(report, points)
    span = points[-1]["t"] - start
    unit, scale = ("days", 86_400.0) if span >= 3 * 86_400.0 else ("hours", 3_600.0)
    x = [(p["t"] - start) / scale for p in points]

    def nan(v: float | None) -> float:
        return float("nan") if v is None else v

    def band(key: str, side: int) -> list[float]:
        return [nan(p[key][side]) for p in points]

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.fill_between(
        x, band("seq_ci", 0), band("seq_ci", 1), alpha=0.2, lw=0, label="always-valid sequence"
    )
    ax.fill_between(x, band("ci", 0), band("ci", 1), alpha=0.35, lw=0, label="fixed-horizon CI")
    ax.plot(x, [nan(p["diff"]) for p in points], marker="o", ms=3, lw=1.4, label="difference")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xlabel(f"{unit} since the start")
    ax.set_ylabel(f"{entry['metric']}: {entry['variant']} − {entry['control']}")
    ax.set_title(f"{entry['metric']}, {entry['variant']} vs {entry['control']} (cumulative)")
    ax.legend(fontsize=7)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _values_figure(comparisons: list[dict[str, Any]]) -> str | None:
    """Per metric, every variant's observed value; bars: control + the fixed CI of the difference."""
    usable: dict[str, list[dict[str, Any]]] = {}
    for c in comparisons:
        if "error" not in (c.get("plain") or {"error": ""}):
            usable.setdefault(c["metric"], []).append(c)
    if not usable:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(usable), figsize=(3.2 * len(usable), 3.2), squeeze=False)
    for ax, (metric, entries) in zip(axes[0], usable.items(), strict=True):
        first = entries[0]["plain"]
        names = [entries[0]["control"], *(e["variant"] for e in entries)]
        ax.plot([0], [first["mean_a"]], "o", color="#555")
        for i, e in enumerate(entries, start=1):
            p = e["plain"]
            lo, hi = (p["mean_a"] + v if v is not None else p["mean_b"] for v in p["ci"])
            ax.errorbar(
                [i],
                [p["mean_b"]],
                yerr=[[p["mean_b"] - lo], [hi - p["mean_b"]]],
                fmt="o",
                capsize=4,
            )
        ax.axhline(first["mean_a"], color="#555", lw=0.7, ls="--")
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(metric)
    fig.tight_layout()
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _img(png: str) -> str:
    return f'<img src="data:image/png;base64,{png}">'


def _plots(report: dict[str, Any]) -> str:
    comparisons = report.get("comparisons") or []
    primary = report.get("primary_metric")
    parts = ["<h3>Primary metric over time</h3>"]
    timelines = [c for c in comparisons if c["metric"] == primary]
    for entry in timelines:
        if entry.get("timeline"):
            parts.append(_img(_timeline_figure(report, entry)))
        else:
            parts.append(f"<p>{_e(entry['variant'])} vs {_e(entry['control'])}: {_NOT_YET}.</p>")
    if not timelines:
        parts.append(f"<p>{_NOT_YET}.</p>")
    parts.append(
        '<p class="note">The difference at every look (plain test), the always-valid '
        "confidence sequence (may be read at any look; stop when it excludes 0) and the "
        "fixed-horizon CI (valid only for one look at a planned sample size).</p>"
        "<h3>Per-variant values</h3>"
    )
    values = _values_figure(comparisons)
    if values is None:
        parts.append(f"<p>{_NOT_YET}.</p>")
    else:
        parts.append(
            _img(values) + '<p class="note">Observed values (plain test); the dashed line is '
            "the control; a variant's bar is the control's value plus the fixed-horizon CI of "
            "the difference.</p>"
        )
    return "".join(parts)


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML page of an `experiment_report` dict; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"lmrec experiment — {report['experiment']['id']}"
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{_STYLE}</style></head>
<body><h1>{_e(title)}</h1>
{_header(report)}
<h2>Sample-ratio mismatch</h2>{_srm(report)}
<h2>Metrics</h2>
<p class="note">Means per unit (observed). Difference, lift and p: CUPED (adjusted by each
unit's pre-experiment value) when it could run, else the plain test; intervals are
{(1 - report["experiment"]["alpha"]) * 100:g}%. Always-valid p: the running minimum over looks of the
plain test's sequential p-value; BH-adjusted: Benjamini–Hochberg over every metric and
variant; significant: the BH-adjusted always-valid p is at most alpha.</p>
{_tables(report)}
<h2>Plots</h2>{_plots(report)}
</body></html>"""
    path.write_text(body, encoding="utf-8")
    return path
