"""`lmrec simulate`: strategies served to simulated users for many rounds (registered by `lmrec.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from lmrec.cli_data import DataDir
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.simulation.config import TruthFamily

__all__ = ["simulate_command"]

#: The `--param` prefix of simulator settings (`sim.choice.satiation=0`).
SIM = "sim"


def _strategy_ndcg(dataset: Any, specs: list[Any], vectors: Any) -> dict[str, float]:
    """Each strategy's NDCG@10 under leave-one-out, through its pipeline (validity)."""
    from lmrec.evaluation import EvalOptions, ModelSpec, run_experiment

    out = {}
    for spec in specs:
        exp = run_experiment(
            dataset,
            "loo",
            [ModelSpec(spec.label, spec.cls, spec.params)],
            options=EvalOptions(ks=(10,)),
            item_vectors=vectors,
            pipeline=spec.pipeline,
        )
        out[spec.label] = float(exp.results[spec.label].summary["ndcg@10"])
    return out


def simulate_command(
    dataset: Annotated[str, typer.Option(help="Dataset name (see `lmrec datasets`) or a path.")],
    strategies: Annotated[
        str,
        typer.Option(
            help=(
                "Comma-separated strategies, each MODEL[+KNOB[=VALUE]]...: a model short name "
                "or import path, then re-ranking knobs of its pipeline. +mmr = mmr_lambda 0.7, "
                "+mmr=0.5, +cap = exposure_cap 2, +cap=3, or +FIELD=VALUE for any re-ranking "
                "field (+mmr_space=attributes). E.g. pop,ease,fused,fused+mmr."
            )
        ),
    ] = "pop,ease",
    rounds: Annotated[
        int, typer.Option(help="Rounds to simulate (a round is a week by default).")
    ] = 50,
    users: Annotated[
        int | None, typer.Option(help="Simulated users sampled from the log (default: all).")
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds (worlds); intervals are over seeds.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Write the results JSON here.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "MODEL.KEY=VALUE sets a model hyperparameter for every strategy of that model "
                "(ease.reg=500); rerank.KEY=VALUE a re-ranking knob of every pipeline; "
                "sim.KEY=VALUE a simulator setting, nested with dots (sim.k=20, "
                "sim.choice.satiation=0, sim.returns.leave_hazard=0.02, sim.arrivals.share=0.1, "
                "sim.truth_params.reg=200)."
            )
        ),
    ] = None,
    refit_every: Annotated[
        int, typer.Option(help="Rounds between refits on the log plus simulated events (0: never).")
    ] = 10,
    truth: Annotated[
        str,
        typer.Option(
            help=(
                "Ground-truth user models, comma-separated: ease (item-item), als (matrix "
                "factorisation). A strategy of the truth's family has an edge, so compare under "
                "both; `strategies` in the JSON is the first truth's, `truths` holds every one."
            )
        ),
    ] = "ease,als",
    reference: Annotated[
        str | None,
        typer.Option(help="Strategy the others are compared with (default: the first)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    validity: Annotated[
        bool,
        typer.Option(
            "--validity/--no-validity",
            help="Also measure each strategy's leave-one-out NDCG@10 (one more fit each) to hold against the truth's.",
        ),
    ] = True,
    data_dir: DataDir = None,
) -> None:
    """Simulate users fitted from the log meeting each strategy's served pipeline; write JSON/HTML.

    Example: lmrec simulate --dataset ml-100k --strategies pop,ease,fused,fused+mmr --rounds 50 --seeds 3 --out sim.json --report sim.html
    """
    from rich.console import Console

    from lmrec.cli import _text_vectors
    from lmrec.cli_data import load_for_cli, progress_bar
    from lmrec.evaluation.runner import RERANK, parse_params
    from lmrec.simulation.config import SimulationConfig
    from lmrec.simulation.report import write_report
    from lmrec.simulation.runner import run_simulation, timed, write_json
    from lmrec.simulation.strategies import parse_strategies

    console = Console(stderr=True)
    by_prefix = parse_params(param or [])
    sim_params = by_prefix.pop(SIM, {})
    rerank = by_prefix.pop(RERANK, {})
    specs = parse_strategies(strategies, by_prefix, rerank)
    unknown = set(by_prefix) - {s.model for s in specs}
    if unknown:
        raise ConfigError(
            f"--param names models no strategy uses: {', '.join(sorted(unknown))} "
            f"(or use {RERANK}.KEY=VALUE or {SIM}.KEY=VALUE)"
        )
    families = [t.strip() for t in truth.split(",") if t.strip()]
    config = SimulationConfig.from_params(
        sim_params,
        rounds=rounds,
        users=users,
        refit_every=refit_every,
        seed=seed,
        truth=families[0],
    )
    for family in families[1:]:
        SimulationConfig.from_params({}, truth=family)  # fail on a bad family before loading
    reference = reference or specs[0].label
    if reference not in {s.label for s in specs}:
        raise ConfigError(f"--reference {reference!r} is not among the strategies")
    ds = load_for_cli(dataset, data_dir)
    has_text = ds.catalog.has_titles
    vectors = _text_vectors(ds) if has_text else None
    ndcg = None
    if validity:
        with console.status("validity: leave-one-out NDCG@10 of each strategy ..."):
            ndcg = _strategy_ndcg(ds, specs, vectors)
    total = len(families) * seeds * len(specs) * rounds
    with progress_bar(console) as progress:
        task = progress.add_task("fitting users", total=total)

        def on_event(kind: str, info: dict[str, Any]) -> None:
            if kind == "truth":
                progress.update(task, description=f"fitting users ({info['truth']})")
            elif kind == "fit":
                progress.update(task, description=f"fitting {info['strategy']}")
            elif kind == "start":
                progress.update(
                    task, description=f"{info['truth']} · seed {info['seed']} · {info['strategy']}"
                )
            elif kind == "round":
                progress.advance(task)

        doc = timed(
            lambda: run_simulation(
                ds,
                specs,
                config,
                seeds=seeds,
                truths=cast("list[TruthFamily]", families),
                vectors=vectors,
                reference=reference,
                strategy_ndcg=ndcg,
                on_event=on_event,
            )
        )
    for label, res in doc["strategies"].items():
        f = res["final"]
        console.print(
            f"{label}: round {rounds - 1} ctr {f['ctr']} · active {f['active_users']} · "
            f"gini {f['gini']} · homogenisation {f['homogenisation']} · {res['seconds_per_round']} s/round"
        )
    if out is not None:
        console.print(f"wrote {write_json(doc, out)}")
    if report is not None:
        console.print(f"wrote {write_report(doc, report)}")
