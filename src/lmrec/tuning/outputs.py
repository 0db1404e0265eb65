"""What a study leaves: the test scores of its chosen configs, best.json, trials.csv,
epochs.csv, tune.json and an HTML report (plots drawn here, nothing fetched to view)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.evaluation.evaluator import EvalOptions, ModelEvaluation
from lmrec.evaluation.report import _figure_png
from lmrec.evaluation.runner import _round
from lmrec.evaluation.significance import bootstrap_ci, paired_test
from lmrec.models.names import reuse_fitted_parts
from lmrec.tuning.protocol import TextVectors, TrialConfig, score_config
from lmrec.tuning.study import (
    TuneSetup,
    chosen_trials,
    default_trial,
    trial_config,
)

__all__ = ["score_on_test", "write_outputs"]

#: Metrics reported on test for every chosen config (with the objectives).
TEST_METRICS = ("ndcg@10", "recall@10")


def _test_row(
    res: ModelEvaluation, metrics: list[str], reference: ModelEvaluation | None, seed: int
) -> dict[str, Any]:
    row: dict[str, Any] = {"test": {}, "ci95": {}}
    for m in metrics:
        if m in res.summary:
            row["test"][m] = _round(res.summary[m])
        if m in res.per_user:
            ci = bootstrap_ci(res.per_user[m], seed=seed)
            row["ci95"][m] = [_round(ci.low), _round(ci.high)]
    if reference is not None:
        if not np.array_equal(res.users, reference.users):
            raise AssertionError("default and tuned configs were tested on different users")
        row["vs_default"] = {}
        for m in TEST_METRICS:
            t = paired_test(res.per_user[m], reference.per_user[m], seed=seed)
            row["vs_default"][m] = {
                "diff": _round(t.diff.mean),
                "ci95": [_round(t.diff.low), _round(t.diff.high)],
                "p_bootstrap": _round(t.p_bootstrap),
                "p_ttest": _round(t.p_ttest),
            }
    return row


def score_on_test(setup: TuneSetup, study: Any, dataset: Dataset, limit: int = 8) -> dict[str, Any]:
    """Refit the defaults and the chosen configs on the whole dataset, as `lmrec
    evaluate` would, and score each on the test split: the only test reads of a tuning run."""
    chosen = chosen_trials(study, limit)
    default = default_trial(setup, study)
    default_stored = default.params if default is not None else setup.space.defaults()
    vectors = TextVectors(dataset.catalog, setup.text_model)
    diversity = vectors({})
    metrics = list(dict.fromkeys([*TEST_METRICS, *(o.name for o in setup.objectives)]))
    options = EvalOptions(ks=setup.ks, save_top=max(setup.ks))

    def run(config: TrialConfig) -> ModelEvaluation:
        return score_config(
            dataset,
            setup.protocol,
            config,
            seed=setup.seed,
            options=options,
            vectors=vectors,
            diversity_vectors=diversity,
        )

    with reuse_fitted_parts():  # the defaults and the chosen configs share parts
        reference = run(trial_config(setup, default_stored))
        out: dict[str, Any] = {
            "default": {
                "trial": default.number if default is not None else None,
                "config": trial_config(setup, default_stored).to_json(),
                "validation": _values(setup, default),
                **_test_row(reference, metrics, None, setup.seed),
            },
            "chosen": [],
        }
        for t in chosen:
            config = trial_config(setup, t.params)
            res = reference if default is not None and t.number == default.number else run(config)
            out["chosen"].append(
                {
                    "trial": t.number,
                    "config": config.to_json(),
                    "validation": _values(setup, t),
                    **_test_row(res, metrics, reference, setup.seed),
                }
            )
        out["test_reads"] = 1 + sum(
            1 for t in chosen if default is None or t.number != default.number
        )
        return out


def _values(setup: TuneSetup, trial: Any) -> dict[str, float | None]:
    if trial is None or trial.values is None:
        return {}
    return {o.name: _round(v) for o, v in zip(setup.objectives, trial.values, strict=True)}


def trial_rows(setup: TuneSetup, study: Any) -> list[dict[str, Any]]:
    """Every trial as a flat row (trials.csv)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "trial": t.number,
            "state": t.state.name.lower(),
            "default": bool(t.user_attrs.get("default", False)),
        }
        # A pruned trial's stored value is its last learning-curve point, not the objective.
        complete = t.state.name == "COMPLETE"
        for i, o in enumerate(setup.objectives):
            row[o.name] = t.values[i] if complete and t.values is not None else None
        for name in setup.space.dimensions:
            row[name] = t.params.get(name)
        row["duration_s"] = t.duration.total_seconds() if t.duration is not None else None
        row["fit_seconds"] = t.user_attrs.get("fit_seconds")
        row["epochs"] = len(t.user_attrs.get("epochs", []))
        row["note"] = t.user_attrs.get("error") or t.user_attrs.get("pruned") or ""
        rows.append(row)
    return rows


def write_outputs(
    setup: TuneSetup,
    study: Any,
    out: Path,
    summary: dict[str, Any],
) -> dict[str, Path]:
    """Write best.json, trials.csv, epochs.csv, tune.json and report.html into `out`."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("best.json", "trials.csv", "epochs.csv", "tune.json")}
    paths["report.html"] = out / "report.html"
    best = summary["test"]["chosen"][0]
    doc = dict(best["config"])
    doc["tuning"] = {
        "study": summary["study"],
        "trial": best["trial"],
        "validation": best["validation"],
        "test": best["test"],
    }
    paths["best.json"].write_text(json.dumps(doc, indent=2) + "\n")
    pd.DataFrame(trial_rows(setup, study)).to_csv(paths["trials.csv"], index=False)
    epochs = [
        {"trial": t.number, "epoch": e + 1, "valid_ndcg@10": v}
        for t in study.get_trials(deepcopy=False)
        for e, v in enumerate(t.user_attrs.get("epochs", []))
    ]
    pd.DataFrame(epochs, columns=["trial", "epoch", "valid_ndcg@10"]).to_csv(
        paths["epochs.csv"], index=False
    )
    paths["tune.json"].write_text(json.dumps(summary, indent=2, default=str) + "\n")
    paths["report.html"].write_text(report_html(setup, study, summary))
    return paths


# --- the HTML report -----------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _complete(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return list(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _history(setup: TuneSetup, study: Any) -> str:
    plt = _plt()
    trials = _complete(study)
    n = len(setup.objectives)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 3.2), squeeze=False)
    for i, (o, ax) in enumerate(zip(setup.objectives, axes[0], strict=True)):
        xs = [t.number for t in trials]
        ys = [t.values[i] for t in trials]
        ax.scatter(xs, ys, s=14, color="#4C72B0", label="trial")
        pick = np.maximum.accumulate if o.direction == "maximize" else np.minimum.accumulate
        if ys:
            ax.step(xs, pick(np.asarray(ys)), where="post", color="#C44E52", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"validation {o.name}")
        ax.legend(fontsize=8)
    fig.suptitle("optimisation history")
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _importances(setup: TuneSetup, study: Any) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    if len(_complete(study)) < 4 or len(setup.space) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(
            study,
            evaluator=FanovaImportanceEvaluator(seed=setup.seed),
            target=lambda t: t.values[0],
        )
    except (RuntimeError, ValueError):  # e.g. a parameter that never varied
        return {}
    return {k: float(v) for k, v in found.items()}


def _bars(values: dict[str, float], title: str) -> str:
    plt = _plt()
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 0.4 * len(names) + 1.2))
    ax.barh(names, [values[n] for n in names], color="#55A868")
    ax.set_title(title)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _slices(setup: TuneSetup, study: Any) -> str:
    plt = _plt()
    trials = _complete(study)
    dims = list(setup.space)
    cols = min(3, len(dims))
    rows = -(-len(dims) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, dim in zip(axes.flat, dims, strict=False):
        xs = [t.params.get(dim.name) for t in trials]
        ys = [t.values[0] for t in trials]
        if dim.kind == "choice":
            labels = list(dim.labels)
            ax.scatter([labels.index(str(x)) for x in xs], ys, s=14, color="#4C72B0")
            ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        else:
            ax.scatter(xs, ys, s=14, c=[t.number for t in trials], cmap="viridis")
            if dim.log:
                ax.set_xscale("log")
        ax.set_title(dim.name, fontsize=9)
        ax.set_ylabel(setup.objectives[0].name, fontsize=8)
    for ax in list(axes.flat)[len(dims) :]:
        ax.axis("off")
    fig.suptitle("slices: validation objective against each parameter (colour = trial)")
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _pareto(setup: TuneSetup, study: Any, summary: dict[str, Any]) -> str:
    plt = _plt()
    a, b = setup.objectives[0], setup.objectives[1]
    trials = _complete(study)
    front = {t.number for t in study.best_trials}
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(
        [t.values[1] for t in trials if t.number not in front],
        [t.values[0] for t in trials if t.number not in front],
        s=14,
        color="#BBBBBB",
        label="trials (validation)",
    )
    ax.scatter(
        [t.values[1] for t in trials if t.number in front],
        [t.values[0] for t in trials if t.number in front],
        s=26,
        color="#C44E52",
        label="Pareto front (validation)",
    )
    tested = [c for c in summary["test"]["chosen"] if b.name in c["test"] and a.name in c["test"]]
    ax.scatter(
        [c["test"][b.name] for c in tested],
        [c["test"][a.name] for c in tested],
        s=40,
        marker="x",
        color="#4C72B0",
        label="chosen points on test",
    )
    ax.set_xlabel(b.name)
    ax.set_ylabel(a.name)
    ax.legend(fontsize=8)
    png = _figure_png(fig)
    plt.close(fig)
    return png


def _table(rows: list[list[Any]], head: list[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return html.escape("" if v is None else str(v))

    out = [
        "<div class='scroll'><table><tr>",
        *(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr>",
    ]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>")
    out.append("</table></div>")
    return "".join(out)


def report_html(setup: TuneSetup, study: Any, summary: dict[str, Any]) -> str:
    """The study as one self-contained HTML page."""
    test = summary["test"]
    names = [o.name for o in setup.objectives]
    rows = []
    for label, row in [("default", test["default"]), *(("chosen", c) for c in test["chosen"])]:
        vs = row.get("vs_default", {}).get("ndcg@10")
        rows.append(
            [
                label,
                row["trial"],
                *(row["validation"].get(n) for n in names),
                *(row["test"].get(n) for n in names if n != "ndcg@10"),
                row["test"].get("ndcg@10"),
                row["test"].get("recall@10"),
                (f"{vs['diff']:+.4f} [{vs['ci95'][0]:+.4f}, {vs['ci95'][1]:+.4f}]" if vs else ""),
                json.dumps(
                    {**row["config"]["params"], **row["config"]["rerank"], **row["config"]["text"]}
                ),
            ]
        )
    head = [
        "",
        "trial",
        *(f"valid {n}" for n in names),
        *(f"test {n}" for n in names if n != "ndcg@10"),
        "test ndcg@10",
        "test recall@10",
        "ndcg@10 vs default (95% CI)",
        "config",
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>lmrec tune: {html.escape(setup.model)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        ".scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:right}"
        "td:last-child{text-align:left;font-family:monospace;font-size:12px}"
        "img{max-width:100%}@media print{.scroll{overflow:visible}}</style></head><body>",
        f"<h1>lmrec tune · {html.escape(setup.model)} on {html.escape(summary['dataset'])}</h1>",
        f"<p>{html.escape(summary['protocol_note'])}</p>",
        f"<p>{summary['trials']['complete']} trials completed, {summary['trials']['pruned']} pruned, "
        f"{summary['trials']['fail']} failed; {summary['wall_seconds']:.0f} s; sampler "
        f"{html.escape(setup.sampler)}, seed {setup.seed}. The test split was read "
        f"{test['test_reads']} time(s), after the search.</p>",
        "<h2>Chosen configs</h2>",
        _table(rows, head),
        f"<h2>Optimisation history</h2><img src='data:image/png;base64,{_history(setup, study)}'>",
    ]
    if len(setup.objectives) > 1:
        parts.append(
            f"<h2>Pareto front</h2><img src='data:image/png;base64,{_pareto(setup, study, summary)}'>"
        )
    importances = _importances(setup, study)
    if importances:
        png = _bars(importances, f"parameter importance for {names[0]} (fANOVA)")
        parts.append(f"<h2>Parameter importances</h2><img src='data:image/png;base64,{png}'>")
    if len(setup.space):
        parts.append(f"<h2>Slices</h2><img src='data:image/png;base64,{_slices(setup, study)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)
