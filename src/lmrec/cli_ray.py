"""The Ray options of every command whose batch work can run on a Ray cluster, and the one
function that connects for them.

`lmrec evaluate` (encoding, models, seeds), `lmrec train` (encoding), `lmrec tune` (trial
workers) and `lmrec recommend` (user shards) declare them with these aliases:

    def recommend(..., ray: UseRay = False, ray_address: RayAddress = None, ray_cpus: RayCpus = None):
        cluster = ray_cluster(ray, ray_address, ray_cpus)   # None: one process, as before

Ray is imported only when a command is asked to use it (`lmrec --help` stays fast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.distributed import Cluster

__all__ = ["RayAddress", "RayCpus", "UseRay", "ray_cluster"]

UseRay = Annotated[
    bool,
    typer.Option(
        "--ray",
        help="Run the batch work on Ray (the `ray` extra): a local cluster on this machine's "
        "cores, started and stopped by the command, unless --ray-address names one. Same "
        "results as without it.",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="A running Ray cluster to use (auto, HOST:6379 or ray://HOST:10001); implies "
        "--ray. Its nodes need lmrec installed and read the same files (artefacts, journals).",
    ),
]
RayCpus = Annotated[
    int | None,
    typer.Option(
        "--ray-cpus", min=1, help="CPUs of the local Ray cluster (default: every usable core)."
    ),
]


def ray_cluster(use: bool, address: str | None, cpus: int | None) -> Cluster | None:
    """The cluster the Ray options ask for (connected), or None to stay in this process."""
    if not use and address is None:
        if cpus is not None:
            raise ConfigError("--ray-cpus sizes the local Ray cluster: add --ray")
        return None
    from lmrec.distributed import connect

    return connect(address, cpus)
