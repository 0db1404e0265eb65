"""Routes of the experiments resource: define, list, stop and report A/B and interleaving tests."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from lmrec.experiments.analysis import experiment_report
from lmrec.experiments.design import Experiment, ExperimentSpec, LayerFull
from lmrec.serving.deps import AdminKey, ApiError, ReadKey, Services
from lmrec.serving.experiments import ExperimentExists, UnknownExperiment
from lmrec.serving.schemas import ErrorBody, ExperimentOut, ExperimentsResponse

__all__ = ["router"]

router = APIRouter()

_NO_SUCH: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such experiment"}
}


def _out(e: Experiment) -> ExperimentOut:
    return ExperimentOut(**e.model_dump(), status=e.status_at(time.time()))


def _get(svc: Services, experiment_id: str) -> Experiment:
    try:
        return svc.experiments.get(experiment_id)
    except UnknownExperiment as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.post(
    "/v1/admin/experiments",
    tags=["admin", "experiments"],
    dependencies=[AdminKey],
    response_model=ExperimentOut,
    status_code=201,
    responses={409: {"model": ErrorBody, "description": "The id or the layer's traffic is taken"}},
)
def create_experiment(body: ExperimentSpec, svc: Services) -> ExperimentOut:
    """Start an A/B or interleaving experiment (durable; every worker applies it from the next request)."""
    try:
        experiment = svc.experiments.create(body, time.time())
    except (ExperimentExists, LayerFull) as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return _out(experiment)


@router.get(
    "/v1/experiments",
    tags=["experiments"],
    dependencies=[ReadKey],
    response_model=ExperimentsResponse,
)
def list_experiments(svc: Services) -> ExperimentsResponse:
    """Every experiment, running or not."""
    return ExperimentsResponse(experiments=[_out(e) for e in svc.experiments.all()])


@router.get(
    "/v1/experiments/{experiment_id}",
    tags=["experiments"],
    dependencies=[ReadKey],
    response_model=ExperimentOut,
    responses=_NO_SUCH,
)
def get_experiment(experiment_id: str, svc: Services) -> ExperimentOut:
    """One experiment's definition and status."""
    return _out(_get(svc, experiment_id))


@router.post(
    "/v1/admin/experiments/{experiment_id}/stop",
    tags=["admin", "experiments"],
    dependencies=[AdminKey],
    response_model=ExperimentOut,
    responses=_NO_SUCH,
)
def stop_experiment(experiment_id: str, svc: Services) -> ExperimentOut:
    """Stop an experiment: its units get the default from the next request; its data stays."""
    try:
        return _out(svc.experiments.stop(experiment_id, time.time()))
    except UnknownExperiment as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get(
    "/v1/experiments/{experiment_id}/report",
    tags=["experiments"],
    dependencies=[ReadKey],
    responses=_NO_SUCH,
)
def report(experiment_id: str, svc: Services) -> dict[str, Any]:
    """Per-variant metrics with fixed and always-valid intervals, lift, SRM and the timeline."""
    experiment = _get(svc, experiment_id)
    return experiment_report(
        experiment,
        svc.store.exposures(experiment_id),
        svc.store.unit_events(experiment_id),
        now=time.time(),
    )
