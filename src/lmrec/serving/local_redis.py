"""A local `redis-server` for development, tests and benchmarks: a loopback port, its own
folder, and the durable settings lmrec expects (`--appendonly yes --appendfsync always`).

Production runs its own Redis; this starts the binary Debian's `redis-server` package
installs, so a test or a benchmark can kill it with SIGKILL and start it again on
the same port, replaying its append-only file.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from lmrec.errors import LmrecError

__all__ = ["RedisServer"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1 with its files in `dir`.

    `appendonly yes` + `appendfsync always` by default (what lmrec expects); `stop`
    with `kill=True` sends SIGKILL, and `start` again replays the AOF.
    """

    def __init__(self, dir: Path, *, appendonly: bool = True, fsync: str = "always"):
        binary = shutil.which("redis-server")
        if binary is None:
            raise LmrecError("redis-server is not installed: apt-get install redis-server")
        self.binary, self.dir = binary, dir
        self.port = _free_port()
        self.appendonly, self.fsync = appendonly, fsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
        ]
        args += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", self.fsync]
        args += ["--save", "", "--protected-mode", "yes", "--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise LmrecError(f"redis-server exited: {(self.dir / 'redis.log').read_text()}")
            time.sleep(0.05)
        raise LmrecError("redis-server did not answer within 20 s")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(10)
        self.proc = None
