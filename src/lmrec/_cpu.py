"""How many CPU cores this process may use (the default for every thread count), and
how parallel workers split them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["share_cores", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the OS has one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


@contextmanager
def share_cores(worker: int, workers: int, most: int | None = None) -> Iterator[None]:
    """Run the block on worker `worker`'s share of this process's cores (one in every
    `workers`, at most `most` of them), so parallel workers do not oversubscribe them:
    `usable_cores()` and the native thread pools (BLAS, OpenMP) are sized to the share.
    Restored on exit.

    Nothing changes when the share is every core, without affinity support, or with
    fewer cores than workers.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    cores = sorted(before)
    mine = set(cores[worker::workers][:most])
    if len(cores) < workers or mine == before:
        yield
        return
    from threadpoolctl import threadpool_limits

    os.sched_setaffinity(0, mine)
    try:
        with threadpool_limits(len(mine)):
            yield
    finally:
        os.sched_setaffinity(0, before)
