"""`lmrec serve --workers N`: N server processes on one listening socket.

The parent binds the socket, starts N processes (each loads the model and serves on
the shared socket: the kernel spreads connections over them) and restarts any that
dies, so a worker killed mid-traffic costs only the requests it held. Several workers
need a shared state store (Redis): each reads every user's events from it on every
request and follows the others' item changes and model loads.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from lmrec.serving.settings import Settings

__all__ = ["limit_native_threads", "serve_workers", "uvicorn_options", "worker_threads"]

log = logging.getLogger("lmrec.serving")


def uvicorn_options(settings: Settings, max_connections: int) -> dict[str, Any]:
    """How lmrec runs uvicorn (one process or each of several)."""
    from lmrec.serving.protocol import guarded_protocol

    return {
        "access_log": False,  # uvicorn's prints query strings; ours logs route templates only
        # Slow or stalled clients: headers must arrive within the body timeout too, and
        # past `max_connections` open connections new ones get 503 instead of a hang.
        "http": guarded_protocol(settings.body_timeout_s),
        "limit_concurrency": max_connections,
        "timeout_keep_alive": 5,
    }


def _exit_with_parent() -> None:
    """End this worker when the supervisor dies (even by SIGKILL), so no orphan keeps
    serving on the socket: Linux's parent-death signal, else a thread watching."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # it died before the call
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="lmrec-parent-watch", daemon=True).start()


def worker_threads(cores: int, workers: int, wanted: int = 1) -> int:
    """Native threads (BLAS, OpenMP) per server process: `wanted`, but no more than its
    share of the cores, and at least one."""
    return max(1, min(wanted, cores // max(1, workers)))


def limit_native_threads(settings: Settings, workers: int = 1) -> None:
    """Size this server process's native thread pools (`Settings.native_threads`).

    The ranking thread multiplies a few queries against the item table at a time; a
    second BLAS thread on such a product mostly spins on a core the event loop, the
    event writer and the other workers need (on Beauty's hybrid, 1 process at 120 req/s
    + 1,000 events/s: 1.75 cores with 2 BLAS threads, 0.99 with one, at a lower p99).
    """
    from threadpoolctl import threadpool_limits

    from lmrec._cpu import usable_cores

    threads = worker_threads(usable_cores(), workers, settings.native_threads)
    threadpool_limits(threads)
    # torch and onnxruntime size their pools from this when they load (after this call,
    # with the model); a torch loaded already is told directly.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _worker(settings_json: str, sock: socket.socket, max_connections: int, workers: int) -> None:
    import uvicorn

    _exit_with_parent()
    # Every worker ranks on the same cores: pools sized to all of them would put
    # workers x cores threads on the cores, each BLAS call spinning against the others.
    settings = Settings.model_validate_json(settings_json)
    limit_native_threads(settings, workers)

    from lmrec.serving.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = uvicorn.Config(create_app(settings), **uvicorn_options(settings, max_connections))
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(
    settings: Settings, workers: int, host: str, port: int, max_connections: int
) -> None:
    """Serve with `workers` processes until SIGINT or SIGTERM; restart any that dies."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    ctx = multiprocessing.get_context("spawn")
    args = (settings.model_dump_json(), sock, max_connections, workers)

    def start(i: int) -> Any:
        proc = ctx.Process(target=_worker, args=args, name=f"lmrec-worker-{i}", daemon=False)
        proc.start()
        return proc

    procs = [start(i) for i in range(workers)]
    log.info(
        "serving on http://%s:%d with %d workers (pids %s)",
        host,
        port,
        workers,
        ", ".join(str(p.pid) for p in procs),
    )
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for i, proc in enumerate(procs):
                if not proc.is_alive() and not stopping:
                    log.warning(
                        "worker %d (pid %s) exited with %s; restarting it",
                        i,
                        proc.pid,
                        proc.exitcode,
                    )
                    procs[i] = start(i)
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(30)
        sock.close()
