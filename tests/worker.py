"""A real Celery worker process for tests that need one (never eager mode).

The worker runs `celery -A mmsportal worker` against the test database and the configured broker,
consuming a queue unique to this test run, so a developer's own `make run` on the same broker
never picks up test tasks (and vice versa).
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from mmsportal.celery import app


def database_url_for_tests() -> str:
    """The URL of the database the tests use, for processes started by the tests."""
    params = connection.settings_dict
    if params["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{params['NAME']}"
    user = params.get("USER") or ""
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="mmsportal.settings",
        DATABASE_URL=database_url_for_tests(),
        CELERY_BROKER_URL=app.conf.broker_url,
        # This process's secrets: tokens it stored must decrypt there, also when a test gives
        # the worker a real RingCentral app's settings (which are a server's, not a demo's).
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        TOKEN_ENCRYPTION_KEYS=",".join(settings.TOKEN_ENCRYPTION_KEYS),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    def __init__(self, queue: str, concurrency: int, env: dict, include: tuple[str, ...] = ()):
        """`include`: more modules with tasks for the worker to import (`celery worker -I`)."""
        self.queue = queue
        self.output: list[str] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mmsportal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--queues",
                queue,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                *(["--include", ",".join(include)] if include else []),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def wait_ready(self, timeout=60):
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("Celery worker did not start:\n" + "".join(self.output[-50:]))

    def stop(self, sig=None):
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, sig or signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def celery_worker(concurrency: int = 2, **env):
    """Start a worker on a fresh queue, route this process' tasks to it, stop it afterwards."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    worker = WorkerProcess(queue, concurrency, subprocess_env(**env))
    try:
        worker.wait_ready()
        yield worker
    finally:
        app.conf.task_default_queue = previous
        worker.stop()


def wait_for(predicate, timeout=30.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
