"""The server's background work: one thread each, run every few milliseconds or seconds.

- `disk_sync`: puts commits made without an fsync (the exposure log) onto the disk
  within a second. Exposures commit in the ranking thread with `synchronous=NORMAL`:
  durable against a killed server at once, against a power cut once this thread (or
  the next full-sync event commit) has synced the write-ahead log.
- `follower`: with a shared store (Redis), applies the item changes other workers
  stored and switches to the model another worker announced, so every worker serves
  the same catalogue (within `interval_s`) and the same model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lmrec.serving.registry import ModelRegistry
from lmrec.serving.store import StateStore, StoreUnavailable

__all__ = ["Periodic", "disk_sync", "follower"]

log = logging.getLogger("lmrec.serving")


class Periodic:
    """Runs `work` every `interval_s` on a daemon thread, and once more on `close`
    when `final`. A failure is logged and the next round tries again."""

    def __init__(
        self, name: str, interval_s: float, work: Callable[[], object], final: bool = False
    ):
        self.name, self.interval_s, self.work, self.final = name, interval_s, work, final
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        """Start the thread; returns `self`."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._once()

    def _once(self) -> None:
        try:
            self.work()
        except (OSError, StoreUnavailable) as exc:  # the next request reports it (503)
            log.warning("%s: %s", self.name, exc)

    def close(self) -> None:
        """Stop the thread (after one last round when `final`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.final:
            self._once()


def disk_sync(store: StateStore, interval_s: float = 1.0) -> Periodic:
    """Sync the store's unsynced commits every `interval_s`, and once more at close."""
    return Periodic("lmrec-disk-sync", interval_s, store.flush, final=True)


def follower(
    registry: ModelRegistry,
    interval_s: float,
    on_model: Callable[[], None] = lambda: None,
) -> Periodic:
    """Follow other workers through the shared store: their item changes, then their
    model announcements (`on_model` runs after a switch)."""

    def follow() -> None:
        registry.follow_items()
        if registry.follow_model() is not None:
            on_model()

    return Periodic("lmrec-follow", interval_s, follow)
