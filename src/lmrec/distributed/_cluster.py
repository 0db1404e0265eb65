"""The one place lmrec talks to Ray: connect to a cluster (or start a local one), and map
work over its workers with the results in input order.

Ray is the `ray` extra: it is imported here, inside the functions, never when lmrec is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from lmrec._cpu import share_cores, usable_cores
from lmrec.errors import ConfigError, LmrecError

__all__ = ["Cluster", "connect", "map_ordered", "require_ray"]

T = TypeVar("T")
R = TypeVar("R")

#: Items each worker holds at once: one running, one queued behind it (no idle round trip).
_IN_FLIGHT = 2


def require_ray(what: str) -> ModuleType:
    """`ray`; a one-line `LmrecError` naming the extra when it is not installed."""
    try:
        import ray
    except ImportError:
        raise LmrecError(
            f"{what} runs on Ray, which is not installed: pip install 'lmrec[ray]'"
        ) from None
    return ray


@dataclass(frozen=True)
class Cluster:
    """The Ray cluster this process is connected to: its address (`local` for one this
    process started), its CPUs, and the most CPUs on one node (the most one worker holds)."""

    address: str
    cpus: int
    node_cpus: int


def connect(address: str | None = None, num_cpus: int | None = None) -> Cluster:
    """Connect to the Ray cluster at `address` (`auto`, `HOST:6379`, `ray://HOST:10001`),
    or with no address start a local one on `num_cpus` cores (default: every usable core);
    it stops when this process exits. Connecting again keeps the cluster already connected.
    """
    ray = require_ray("--ray" if address is None else f"--ray-address {address}")
    if address is not None and num_cpus is not None:
        raise ConfigError(
            "--ray-cpus sizes a local cluster; the cluster at --ray-address has its own CPUs"
        )
    if not ray.is_initialized():
        if address is not None:
            _check_reachable(address)
        try:
            ray.init(
                # "local": a new cluster even where RAY_ADDRESS or a `ray start` one exists.
                address=address or "local",
                num_cpus=(num_cpus or usable_cores()) if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
                logging_level=logging.ERROR,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise LmrecError(f"cannot connect to the Ray cluster at {address}: {reason}") from None
    return _cluster(ray, address or "local")


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail at once on a `HOST:PORT` nothing listens at (Ray itself retries for minutes)."""
    import socket

    host, colon, port = address.rpartition(":")
    if "://" in address or not colon or not port.isdigit():
        return  # `auto`, `ray://...`: Ray finds or reaches those itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise LmrecError(
            f"cannot connect to the Ray cluster at {address} ({exc.strerror or exc}); start "
            "one there with `ray start --head`, or leave out --ray-address for a local one"
        ) from None


def _cluster(ray: ModuleType, address: str) -> Cluster:
    nodes = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")]
    return Cluster(address, int(sum(nodes)), int(max(nodes, default=0.0)))


class _Worker:
    """A Ray actor: pinned to its share of its node's cores, holding a state built once,
    running `fn(state, item)` for the items it is sent."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.state: Any = None

    def node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def start(
        self, slot: int, slots: int, cpus: int, setup: Callable[[Any], Any] | None, shared: Any
    ) -> None:
        # Its `cpus` cores of the node, for the actor's lifetime.
        self._stack.enter_context(share_cores(slot, slots, cpus))
        self.state = setup(shared) if setup is not None else shared

    def run(self, fn: Callable[[Any, Any], Any], item: Any) -> Any:
        return fn(self.state, item)


def _slots(nodes: Sequence[str]) -> list[tuple[int, int]]:
    """(slot, workers on the same node) of each worker, from the node each one runs on."""
    counts: dict[str, int] = {}
    slots = []
    for node in nodes:
        slots.append(counts.get(node, 0))
        counts[node] = slots[-1] + 1
    return [(slot, counts[node]) for slot, node in zip(slots, nodes, strict=True)]


def _get(ray: ModuleType, ref: Any) -> Any:
    """`ray.get(ref)`, raising a task's `LmrecError` as itself (one line, not a traceback)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, LmrecError):
            raise exc.cause from None
        raise


def map_ordered(
    fn: Callable[[Any, T], R],
    items: Sequence[T],
    shared: Any = None,
    *,
    setup: Callable[[Any], Any] | None = None,
    threads: int | None = None,
    desc: str | None = None,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """`fn(state, item)` for every item on Ray workers; the results in `items`' order.

    The workers are Ray actors, as many as the cluster has room for (at most one per
    item), each holding `threads` CPUs (default: an even share of the cluster's CPUs over
    the items, at least 1, at most one node's) and pinned to as many of its node's cores,
    so thread pools are sized to them (`share_cores`): a worker computes what one process
    pinned to `threads` cores computes. Each builds its `state` once:
    `setup(shared)`, or `shared` itself; `shared` is sent to the cluster once. `fn`,
    `setup` and the items must pickle (module-level functions do). `desc` shows a progress
    bar; `on_result(index, result)` is called here as each item finishes. Connects to a
    local cluster first when this process is not connected (`connect`).
    """
    ray = require_ray("map_ordered")
    items = list(items)
    if not items:
        return []
    cluster = connect() if not ray.is_initialized() else _cluster(ray, "connected")
    per = threads or max(1, min(cluster.node_cpus, cluster.cpus // len(items)))
    if per > cluster.node_cpus:
        raise ConfigError(f"{per} threads per worker: no node of the cluster has {per} CPUs")
    worker = ray.remote(num_cpus=per)(_Worker)
    actors = [worker.remote() for _ in range(max(1, min(len(items), cluster.cpus // per)))]
    try:
        nodes = ray.get([a.node.remote() for a in actors])
        state = ray.put(shared)
        for ref in [
            a.start.remote(slot, slots, per, setup, state)
            for a, (slot, slots) in zip(actors, _slots(nodes), strict=True)
        ]:
            _get(ray, ref)
        return _dispatch(ray, actors, fn, items, desc, on_result)
    finally:
        for a in actors:
            ray.kill(a)


def _dispatch(
    ray: ModuleType,
    actors: list[Any],
    fn: Callable[[Any, T], R],
    items: list[T],
    desc: str | None,
    on_result: Callable[[int, R], None] | None,
) -> list[R]:
    """Keep every actor `_IN_FLIGHT` items busy until all are done; results by index."""
    from tqdm.auto import tqdm

    results: list[Any] = [None] * len(items)
    pending: dict[Any, tuple[int, Any]] = {}
    free = [a for _ in range(_IN_FLIGHT) for a in actors]
    nxt = 0
    with tqdm(total=len(items), disable=desc is None, desc=desc) as bar:
        while nxt < len(items) or pending:
            while free and nxt < len(items):
                actor = free.pop(0)
                pending[actor.run.remote(fn, items[nxt])] = (nxt, actor)
                nxt += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index, actor = pending.pop(ref)
                results[index] = _get(ray, ref)
                free.append(actor)
                bar.update(1)
                if on_result is not None:
                    on_result(index, results[index])
    return results
