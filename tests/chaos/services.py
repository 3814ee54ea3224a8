"""The servers and processes a reliability run drives (tests/chaos, tests/load): this machine's
PostgreSQL and Redis on loopback, and the run's own subprocesses.

A run only ever creates and drops databases it names itself, flushes the Redis database it was
given, and signals processes it started (by their process group).
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_CLI = ["redis-cli", "-h", "127.0.0.1", "-p", "6379"]
# The same command as .ci/run's, so Redis comes back exactly as CI had it.
REDIS_START = shlex.split(
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


# --- Servers ------------------------------------------------------------------------------------


def redis_ok() -> bool:
    try:
        out = subprocess.run([*REDIS_CLI, "ping"], capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.stdout.strip() == "PONG"


def redis_start() -> None:
    """Start this machine's Redis as CI does, and wait (at most 15 s) until it answers."""
    if redis_ok():
        return
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(REDIS_START, timeout=15, check=False, capture_output=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not redis_ok():
        time.sleep(0.2)
    if not redis_ok():
        raise RuntimeError("Redis did not come back")


def redis_flush(db: int) -> None:
    """Empty one Redis database (the run's own), never the others."""
    subprocess.run([*REDIS_CLI, "-n", str(db), "FLUSHDB"], timeout=10, capture_output=True)


def pg_admin():
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


def create_database(name: str) -> None:
    """A fresh, empty database `name` (one left over from an earlier run is dropped first)."""
    drop_database(name)
    from psycopg import sql

    with pg_admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    from psycopg import sql

    with pg_admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def terminate_backends(name: str) -> int:
    """Cut every connection to database `name`, as a failover or an operator would; returns
    how many there were."""
    with pg_admin() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


# --- Processes ----------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on now (for a server the run starts)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """`python -m <args>` (a celery worker or beat, gunicorn, …) in a process group of its own,
    logging to `<log_dir>/<name>.log`; "{n}" in an argument becomes a name unique to each start.

    Only this run's own processes are ever signalled, by their group id.
    """

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.started_at = 0.0

    def start(self) -> None:
        self.starts += 1
        args = [a.replace("{n}", f"{self.starts}-{uuid.uuid4().hex[:6]}") for a in self.args]
        with open(self.log_path, "a") as out:
            out.write(f"\n===== start {self.starts} at {time.strftime('%H:%M:%S')} =====\n")
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", *args],
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group (main process and pool), as a crashed host would."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill_child(self, rng: random.Random) -> bool:
        """SIGKILL one child process (a worker's pool process: the main process sees the
        task's worker lost); False when there is none yet."""
        if not self.alive:
            return False
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return False
        if not children:
            return False
        try:
            os.kill(int(rng.choice(children)), signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 20) -> None:
        if not self.alive:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait_ready(self, marker: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if marker in text.rsplit("===== start", 1)[-1]:
                return
            if not self.alive:
                break
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.name} did not start:\n{tail}")
