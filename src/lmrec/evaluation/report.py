"""A self-contained HTML report of an experiment: tables, confidence intervals, plots."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

__all__ = ["STYLE", "write_report"]


def _figure_png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _bar_chart(doc: dict[str, Any], metric: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(doc["results"])
    values = [doc["results"][n].get(metric, 0.0) for n in names]
    lows, highs = [], []
    for n, v in zip(names, values, strict=True):
        ci = doc["results"][n].get("ci95", {}).get(metric, [v, v])
        lows.append(max(0.0, v - ci[0]))
        highs.append(max(0.0, ci[1] - v))
    fig, ax = plt.subplots(figsize=(max(4, 1.1 * len(names)), 3))
    ax.bar(names, values, yerr=[lows, highs], capsize=4, color="#4C72B0")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} with 95% bootstrap CI")
    ax.tick_params(axis="x", rotation=30)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _scatter(doc: dict[str, Any], x: str, y: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, row in doc["results"].items():
        if x in row and y in row:
            ax.scatter(row[x], row[y], s=40)
            ax.annotate(
                name, (row[x], row[y]), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{y} vs {x}")
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _ci(ci: Any) -> str:
    """A 95% interval under its value, on a line of its own so columns stay narrow."""
    return f' <small class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</small>'


def _head(name: str) -> str:
    """A column name that may break after `_` and before `@` (long metric names)."""
    return html.escape(name).replace("_", "_<wbr>").replace("@", "<wbr>@")


def _wrapped(head: list[str], rows: list[list[str]]) -> str:
    """A table in a container that scrolls sideways when the screen is narrower than it."""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="table-wrap"><table><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _table(doc: dict[str, Any], columns: list[str]) -> str:
    rows = []
    for name, row in doc["results"].items():
        cells = [html.escape(name)]
        for c in columns:
            ci = row.get("ci95", {}).get(c)
            text = _fmt(row.get(c)) if c in row else ""
            if ci and None not in ci:
                text += _ci(ci)
            cells.append(text)
        rows.append(cells)
    return _wrapped(["model", *(_head(c) for c in columns)], rows)


def _segments_table(doc: dict[str, Any]) -> str:
    segs: list[str] = []
    for row in doc["results"].values():
        for s in row.get("segments", {}):
            if s not in segs:
                segs.append(s)
    rows = []
    for name, row in doc["results"].items():
        cells = [html.escape(name)]
        for s in segs:
            v = row.get("segments", {}).get(s, {})
            cells.append(f"{_fmt(v.get('ndcg@10'))} ({int(v.get('n_users', 0))})")
        rows.append(cells)
    return _wrapped(["model", *(f"{_head(s)} ndcg@10 (n)" for s in segs)], rows)


def _accuracy_diversity_curve(doc: dict[str, Any], k: int) -> str | None:
    """NDCG against diversity along an MMR lambda sweep (`doc["mmr_curve"]`), one line per curve.

    `doc["mmr_curve"]` maps a curve name to points `{"mmr_lambda", "ndcg@K", "diversity@K"}`
    and optionally `"attribute_diversity@K"` (written by benchmarks/decision_beauty.py),
    which gets a second panel; absent = no plot. Dashed lines mark the issue's target
    box relative to each curve's lambda = 1 point: diversity +20%, NDCG -5%.
    """
    curves = doc.get("mmr_curve") or {}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spaces = [f"diversity@{k}"]
    if any(f"attribute_diversity@{k}" in p for pts in curves.values() for p in pts):
        spaces.append(f"attribute_diversity@{k}")
    fig, axes = plt.subplots(1, len(spaces), figsize=(5.5 * len(spaces), 4), squeeze=False)
    for ax, space in zip(axes[0], spaces, strict=True):
        for name, points in curves.items():
            _curve_line(ax, sorted(points, key=lambda p: -p["mmr_lambda"]), space, k, name)
        ax.set_xlabel(space)
        ax.set_ylabel(f"ndcg@{k}")
        ax.set_title(f"Accuracy vs {space} (MMR lambda)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _curve_line(ax: Any, pts: list[dict[str, Any]], space: str, k: int, name: str) -> None:
    """One curve, its lambdas annotated, and its target box (diversity x1.2, NDCG x0.95)."""
    xs = [p.get(space, float("nan")) for p in pts]
    ys = [p.get(f"ndcg@{k}", float("nan")) for p in pts]
    (line,) = ax.plot(xs, ys, marker="o", label=name)
    for p, x, y in zip(pts, xs, ys, strict=True):
        ax.annotate(
            f"{p['mmr_lambda']:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6
        )
    if pts and pts[0]["mmr_lambda"] == 1.0:
        ax.axvline(1.2 * xs[0], color=line.get_color(), ls="--", lw=0.7)
        ax.axhline(0.95 * ys[0], color=line.get_color(), ls=":", lw=0.7)


def _interest_table(doc: dict[str, Any]) -> str:
    """Per-interest breakdown: accuracy by the number of interests in a user's history.

    `doc["interests"]` maps a segment name (e.g. "1 interest", "2+ interests") to
    `{model: {metric: value, ..., "n_users": n}}`; absent = empty string.
    """
    segments = doc.get("interests") or {}
    if not segments:
        return ""
    models: list[str] = []
    metrics: list[str] = []
    for per_model in segments.values():
        for name, values in per_model.items():
            if name not in models:
                models.append(name)
            for m in values:
                if m not in metrics and m != "n_users" and not m.endswith("_ci95"):
                    metrics.append(m)
    rows = []
    for seg, per_model in segments.items():
        for name in models:
            v = per_model.get(name)
            if v is None:
                continue
            cells = [html.escape(seg), str(int(v.get("n_users", 0))), html.escape(name)]
            for m in metrics:
                val = v.get(m)
                text = "" if val is None else f"{val:.4f}"
                ci = v.get(f"{m}_ci95")
                if ci:
                    text += _ci(ci)
                cells.append(text)
            rows.append(cells)
    head = ["segment", "users", "model", *(_head(m) for m in metrics)]
    return (
        "<h2>Per-interest breakdown</h2><p>Users grouped by how many interests (text-space "
        f"clusters) their history spans.</p>{_wrapped(head, rows)}"
    )


#: Laid out for a laptop screen (a 1,280 px window) and for print: the page is at most
#: 1,200 px wide, the accuracy table is one table a cutoff (8 columns), intervals sit under
#: their values, and a table wider than the screen scrolls inside its own box (with the
#: model column held in place) instead of widening the page. Print lays every table out
#: in full on landscape pages, without the scroll boxes.
STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;line-height:1.4;margin:1.5rem auto;padding:0 1rem;max-width:1200px}
h3{margin:1rem 0 0.25rem;font-size:1rem}
.table-wrap{max-width:100%;overflow-x:auto;margin:0.25rem 0 1.25rem}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:0.9rem}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}
td{white-space:nowrap}
th{background:#f3f3f3;font-weight:600;min-width:5.5em}
td:first-child,th:first-child{text-align:left;position:sticky;left:0;background:#fff;
  white-space:normal;min-width:6em;max-width:16em;overflow-wrap:anywhere}
th:first-child{background:#f3f3f3}
small.ci{display:block;color:#555;font-size:0.78em}
.plots{display:flex;flex-wrap:wrap;gap:0.5rem;align-items:flex-start}
.plots img{max-width:100%;height:auto}
@media print{
  @page{size:A4 landscape;margin:12mm}
  body{max-width:none;margin:0;padding:0;font-size:10pt}
  .table-wrap{overflow:visible}
  table{font-size:8pt}
  td,th{padding:1px 4px}
  td:first-child,th:first-child{position:static}
  tr,img{break-inside:avoid}
  h2,h3{break-after:avoid}
}
"""


def write_report(doc: dict[str, Any], path: str | Path) -> Path:
    """Write an HTML report for an `Experiment.to_json()` document; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ks = doc.get("ks", [10])
    k = min(ks)
    accuracy = "".join(
        f"<h3>@{kk}</h3>"
        + _table(
            doc, [f"{m}@{kk}" for m in ("ndcg", "recall", "hr", "mrr", "precision", "map", "f1")]
        )
        for kk in ks
    )
    beyond = [
        f"{m}@{k}"
        for m in ("coverage", "diversity", "novelty", "avg_popularity", "long_tail_share", "gini")
    ]
    beyond = [b for b in beyond if any(b in r for r in doc["results"].values())]
    timing = ["fit_seconds", "eval_seconds"]
    plots = [
        _bar_chart(doc, f"ndcg@{k}"),
        _bar_chart(doc, f"recall@{k}"),
        _scatter(doc, f"coverage@{k}", f"ndcg@{k}"),
    ]
    if any(f"diversity@{k}" in r for r in doc["results"].values()):
        plots.append(_scatter(doc, f"diversity@{k}", f"ndcg@{k}"))
    curve = _accuracy_diversity_curve(doc, k)
    if curve is not None:
        plots.append(curve)
    imgs = "".join(f'<img src="data:image/png;base64,{p}" alt="plot">' for p in plots)
    title = f"lmrec — {doc['dataset']} ({doc['protocol']})"
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{doc["n_users"]:,} users, {doc["n_items"]:,} items, {doc.get("n_interactions", 0):,} interactions;
{doc.get("n_test_users", 0):,} test users; full ranking over all items, each user's input items removed
(no sampled negatives). Intervals are 95% percentile bootstrap over users. Run {html.escape(str(doc.get("date", "")))}.</p>
<h2>Accuracy</h2>{accuracy}
<h2>Beyond accuracy</h2>{_table(doc, beyond + timing)}
<h2>Segments</h2><p>Tail items: targets outside the top 20% of items by training popularity.
Short history: users with at most 5 input interactions.</p>{_segments_table(doc)}
{_interest_table(doc)}
<h2>Plots</h2><div class="plots">{imgs}</div>
</body></html>"""
    path.write_text(body, encoding="utf-8")
    return path
