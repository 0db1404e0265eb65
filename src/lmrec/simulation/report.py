"""A self-contained HTML report of a simulation: one figure per metric, tables, validity.

House style of `lmrec.evaluation.report`: matplotlib PNGs embedded as base64, plain
tables. Each figure overlays the strategies' per-round means with their 95% bands
over seeds; the final-round table carries the intervals and the paired differences
against the reference strategy.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from lmrec.evaluation.report import _figure_png

__all__ = ["PLOTTED", "write_report"]

#: Metrics drawn, one figure each, in this order (absent ones are skipped).
PLOTTED = (
    "ctr",
    "conversion",
    "satisfaction",
    "active_users",
    "retention",
    "coverage",
    "gini",
    "gini_shown",
    "avg_popularity",
    "avg_popularity_consumed",
    "long_tail_share",
    "diversity",
    "homogenisation",
    "homogenisation_consumed",
    "taste_drift",
    "new_item_share",
    "ctr_niche",
    "ctr_mainstream",
    "retention_niche",
    "retention_mainstream",
)


def _figure(strategies: dict[str, Any], metric: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.1))
    for label, res in strategies.items():
        rows = [r for r in res["rounds"] if r.get(metric) is not None]
        x = [r["round"] for r in rows]
        (line,) = ax.plot(x, [r[metric] for r in rows], label=label, lw=1.4)
        lo = [r[f"{metric}_ci95"][0] for r in rows]
        hi = [r[f"{metric}_ci95"][1] for r in rows]
        if all(v is not None for v in lo + hi):
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("round")
    ax.set_title(metric)
    ax.legend(fontsize=7)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _cell(value: Any, ci: Any = None) -> str:
    if value is None:
        return "<td>n/a</td>"
    text = f"{value:.4g}"
    if ci and None not in ci:
        text += f" <small>[{ci[0]:.4g}, {ci[1]:.4g}]</small>"
    return f"<td>{text}</td>"


def _final_table(strategies: dict[str, Any], metrics: list[str]) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in ["strategy", *metrics])
    rows = []
    for label, res in strategies.items():
        f = res["final"]
        cells = "".join(_cell(f.get(m), f.get(f"{m}_ci95")) for m in metrics)
        rows.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _diff_table(strategies: dict[str, Any], metrics: list[str]) -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in ["strategy", *metrics])
    rows = []
    for label, res in strategies.items():
        vs = res.get("vs_reference")
        if not vs:
            continue
        cells = "".join(
            _cell(vs[m]["diff"], vs[m]["ci95"]) if m in vs else "<td></td>" for m in metrics
        )
        rows.append(
            f"<tr><td>{html.escape(label)} − {html.escape(vs['reference'])}</td>{cells}</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>" if rows else ""


def _trend_table(strategies: dict[str, Any]) -> str:
    names = list(next(iter(strategies.values()))["trend"])
    head = "".join(f"<th>{html.escape(n)} per round</th>" for n in ["strategy", *names])
    rows = []
    for label, res in strategies.items():
        cells = "".join(_cell(res["trend"][n]["mean"], res["trend"][n]["ci95"]) for n in names)
        rows.append(f"<tr><td>{html.escape(label)}</td>{cells}</tr>")
    return (
        f"<table><tr>{head.replace('strategy per round', 'strategy')}</tr>{''.join(rows)}</table>"
    )


def _validity(v: dict[str, Any]) -> str:
    ndcg = v.get("strategies_ndcg@10", {})
    rows = [f"<tr><td>ground truth (users themselves)</td>{_cell(v['truth_ndcg@10'])}</tr>"]
    rows += [f"<tr><td>{html.escape(k)}</td>{_cell(x)}</tr>" for k, x in ndcg.items()]
    pop = [("logged", v["popularity_logged"]), *list(v["popularity_simulated_round0"].items())]
    qs = list(v["popularity_logged"])
    prow = "".join(
        f"<tr><td>{html.escape(k)}</td>{''.join(_cell(p.get(q)) for q in qs)}</tr>" for k, p in pop
    )
    gaps = [
        ("logged sessions", v.get("session_gaps_logged", {})),
        *list(v["visit_gaps_simulated"].items()),
    ]
    gkeys = ["mean", "median", "p90", "share_1"]
    grow = "".join(
        f"<tr><td>{html.escape(k)}</td>{''.join(_cell(g.get(q)) for q in gkeys)}</tr>"
        for k, g in gaps
    )
    r = v["returns"]
    return f"""<h2>Round-0 validity</h2>
<p>Choice temperature {v["temperature"]} (maximum likelihood of each user's held-out last item),
no-click utility {v["no_click"]}; return rate {r["return_rate"]} per round, leave hazard
{r["leave_hazard"]} per visit ({html.escape(r["source"])}).</p>
<table><tr><th>leave-one-out NDCG@10</th><th>value</th></tr>{"".join(rows)}</table>
<p>Popularity (share of log users) of consumed items: the log vs round 0 of the simulation.</p>
<table><tr><th>consumption</th>{"".join(f"<th>{q}</th>" for q in qs)}</tr>{prow}</table>
<p>Gaps between visits in rounds: the log's sessions vs simulated visits.</p>
<table><tr><th>gaps</th>{"".join(f"<th>{q}</th>" for q in gkeys)}</tr>{grow}</table>"""


def _section(name: str, block: dict[str, Any]) -> str:
    strategies = block["strategies"]
    first = next(iter(strategies.values()))["final"]
    metrics = [m for m in PLOTTED if m in first]
    imgs = "".join(f'<img src="data:image/png;base64,{_figure(strategies, m)}">' for m in metrics)
    cost = "".join(
        f"<tr><td>{html.escape(k)}</td>{_cell(r['seconds_per_round'])}{_cell(r['refit_seconds'])}</tr>"
        for k, r in strategies.items()
    )
    return f"""<h2>Ground truth: {html.escape(name)}</h2>
<h3>Final round</h3>{_final_table(strategies, metrics)}
<h3>Paired differences at the final round (same seeds, same users and arrivals)</h3>{_diff_table(strategies, metrics)}
<h3>Trends (least-squares slope per round)</h3>{_trend_table(strategies)}
<h3>Cost</h3><table><tr><th>strategy</th><th>s per round (median)</th><th>s per refit</th></tr>{cost}</table>
{_validity(block["validity"])}
<h3>Per round</h3>{imgs}"""


def write_report(doc: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML report of a `run_simulation` document; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    s = doc["settings"]
    title = f"lmrec simulation — {doc['dataset']}"
    sections = "".join(_section(name, block) for name, block in doc["truths"].items())
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}img{{margin:0.3em}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{s["rounds"]} rounds, {s["seeds"]} seeds, slate of {s["k"]}, refit every {s["refit_every"]} rounds
(0 = never), users: {s["users"] or "all"}; ground truths: {", ".join(s["truths"])}. Means over seeds;
intervals are 95% percentile bootstrap over the seeds. lmrec {html.escape(str(doc["lmrec_version"]))},
run {html.escape(str(doc.get("date", "")))}, {doc.get("seconds")} s.</p>
{sections}
</body></html>"""
    path.write_text(body)
    return path
