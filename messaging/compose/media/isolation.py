"""Checking and fitting run in a child process, under a memory and a CPU limit.

The header check (cost.py) refuses what it can see is too costly; the limits here stop what it
cannot see — a decoder that loops or allocates more than its format promised — without the
process that asked (a web worker, a Celery worker, the command line) growing or stalling.

How: one short-lived child per step, forked from multiprocessing's *forkserver* (a clean
single-threaded process started once per parent, with Pillow already imported), so a step costs
a fork, not an interpreter start, and the parent's threads, sockets and database connections are
never copied into the child. It works the same from gunicorn, ``runserver``, the command line,
the tests and a Celery prefork worker. The child sets its own limits before it touches the file:

- memory: ``RLIMIT_AS`` at what it has mapped already plus ``Limits.memory`` (malloc is kept to
  one arena, so that threads do not reserve address space they never use, and gives large
  blocks back when they are freed);
- CPU: ``RLIMIT_CPU`` at ``Limits.cpu_seconds`` (the kernel stops it with SIGXCPU, then SIGKILL);
- and the parent waits ``Limits.wall_seconds`` at most (a busy machine's allowance), then
  kills it.

The input goes to the child as a path (an upload Django spooled to disk, a stored draft) or as
bytes when small; the output comes back through a file in a private temporary folder, read once
by the parent, so no large file is ever pickled. At most ``SLOTS`` children run at once per
parent process; more steps wait their turn.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
import types
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing.process import AuthenticationString
from pathlib import Path
from typing import Any

from messaging.compose.media.cleaning import ingest, thumbnail
from messaging.compose.media.cost import Budget
from messaging.compose.media.files import MediaError, MediaFile
from messaging.compose.media.fitting import shrink

log = logging.getLogger(__name__)

# Children running at once per parent process: as many as there are cores (at least two).
SLOTS = max(2, os.cpu_count() or 2)
# Outputs larger than this come back through a file rather than the pipe.
INLINE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Limits:
    """What one step may use: memory it adds (bytes), CPU seconds, and wall-clock seconds."""

    memory: int = 300_000_000
    cpu_seconds: int = 10
    wall_seconds: float = 30.0


@dataclass
class Usage:
    """What a step used in its child: CPU seconds and the peak resident memory it added."""

    cpu_seconds: float = 0.0
    peak_bytes: int = 0
    wall_seconds: float = 0.0


# --- The steps, as the child runs them --------------------------------------------------------


def _read(source: str | bytes) -> bytes:
    return Path(source).read_bytes() if isinstance(source, str) else source


def ingest_source(name: str, source: str | bytes, strip_metadata: bool, budget: Budget):
    """``ingest`` of the file at ``source`` (a path, or the bytes themselves)."""
    return ingest(name, _read(source), strip_metadata=strip_metadata, budget=budget)


def thumbnail_source(source: str | bytes, budget: Budget):
    """``thumbnail`` of the picture at ``source`` (a received file's preview)."""
    return thumbnail(_read(source), budget)


def shrink_source(file: MediaFile, source: str | bytes, target: int, budget: Budget):
    """``shrink`` of ``file``, whose bytes are at ``source``."""
    return shrink(replace(file, loader=None, _data=_read(source)), target, budget)


# --- The child ----------------------------------------------------------------------------------


def _status(field_name: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _malloc_for_pictures() -> None:
    """One malloc arena (threads reserve none of their own), and every large block in its own
    mapping, returned to the system when freed: decoding a picture twice then needs the room
    of one, not of two fragmented ones."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(-8, 1)  # M_ARENA_MAX
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (fixed: no longer grows with use)


def _apply(limits: Limits) -> None:
    _malloc_for_pictures()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime) + limits.cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    mapped = _status("VmSize")
    if mapped:
        resource.setrlimit(resource.RLIMIT_AS, (mapped + limits.memory, mapped + limits.memory))
    with contextlib.suppress(OSError):
        # The peak resident size starts again from here (VmHWM), for the usage report.
        Path("/proc/self/clear_refs").write_text("5")


@dataclass
class _Spilled:
    file: MediaFile
    path: str


def _spill(value: Any, workdir: str) -> Any:
    if isinstance(value, MediaFile) and value._data is not None and value.size > INLINE_BYTES:
        path = os.path.join(workdir, uuid.uuid4().hex)
        Path(path).write_bytes(value._data)
        return _Spilled(replace(value, _data=None), path)
    return value


def _unspill(value: Any) -> Any:
    if isinstance(value, _Spilled):
        value.file._data = Path(value.path).read_bytes()
        return value.file
    return value


def _child(conn, limits: Limits, workdir: str, step: Callable, args: tuple) -> None:
    _apply(limits)
    start_rss = _status("VmRSS")
    start_cpu = time.process_time()
    try:
        outcome = ("ok", _spill(step(*args), workdir))
    except MediaError as error:
        outcome = ("refused", error)
    except MemoryError:
        outcome = ("memory", None)
    except Exception:  # noqa: BLE001 - reported to the parent, which tells the user
        log.warning("A media step failed in its child process", exc_info=True)
        outcome = ("failed", None)
    usage = Usage(
        cpu_seconds=time.process_time() - start_cpu,
        peak_bytes=max(0, _status("VmHWM") - start_rss),
    )
    try:
        conn.send((*outcome, usage))
    except MemoryError:
        conn.send(("memory", None, usage))
    conn.close()


# --- The parent ---------------------------------------------------------------------------------

_context_lock = threading.Lock()
_context = None
_slots = threading.BoundedSemaphore(SLOTS)


def _forkserver():
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            # The server imports this module (and so Pillow and its plugins) once; every child
            # starts with them loaded.
            context.set_forkserver_preload([__name__])
            _context = context
        return _context


_start_lock = threading.Lock()


@contextlib.contextmanager
def _child_start():
    """What the standard library checks while a child starts, set for a child of ours.

    Celery's prefork workers (billiard) stand in for the standard library's current process
    and say they are daemonic, and it then refuses to start any child, to keep children from
    outliving their parent. ``run`` never lets one: it joins or kills its child before it
    returns. So the flag is lifted while a child starts (under ``_start_lock``)."""
    # A child needs nothing of the parent's main module, and multiprocessing would run it
    # again in every child (a script without an ``if __name__ == "__main__"`` guard would start
    # over there): a main module without a file is one it leaves alone.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    config = multiprocessing.current_process()._config
    daemonic = config.pop("daemon", None)
    authkey = config.get("authkey")
    if authkey is not None and not isinstance(authkey, AuthenticationString):
        # billiard's own key type refuses the standard library's pickler; the bytes are the same.
        config["authkey"] = AuthenticationString(bytes(authkey))
    try:
        yield
    finally:
        sys.modules["__main__"] = main
        if daemonic is not None:
            config["daemon"] = daemonic
        if authkey is not None:
            config["authkey"] = authkey


class Stopped(MediaError):
    """A step was stopped by its limits (or its child died); the message says which."""


def _stopped(what: str, name: str, limits: Limits, reason: str) -> Stopped:
    if reason == "memory":
        return Stopped(
            f"“{name}” needs more memory to {what} than the portal gives one file "
            f"({limits.memory // 1_000_000:,} MB). Save a smaller copy and attach that."
        )
    if reason == "time":
        return Stopped(
            f"“{name}” takes too long to {what} (more than {limits.cpu_seconds} seconds of "
            "work). Save a smaller or simpler copy and attach that."
        )
    return Stopped(
        f"“{name}” could not be {'checked' if what == 'check' else 'made smaller'}: reading it "
        "failed. It may be damaged; open it on your device and save or export it again."
    )


def run(
    step: Callable,
    *args,
    limits: Limits,
    name: str,
    what: str = "check",
    on_usage: Callable[[Usage], None] | None = None,
):
    """``step(*args)`` in a child process under ``limits``; its result, or the MediaError it
    raised. A child stopped by a limit (or dead) raises ``Stopped`` naming ``name``."""
    with _slots, tempfile.TemporaryDirectory(prefix="mmsportal-media-") as workdir:
        context = _forkserver()
        receiver, sender = context.Pipe(duplex=False)
        began = time.monotonic()
        with _start_lock, _child_start():
            # Made here: a process copies its parent's settings (the key included) when made.
            child = context.Process(
                target=_child, args=(sender, limits, workdir, step, args), daemon=True
            )
            child.start()
        sender.close()
        answer = None
        try:
            if receiver.poll(limits.wall_seconds):
                try:
                    answer = receiver.recv()
                except (EOFError, OSError):
                    answer = None
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            receiver.close()
        elapsed = time.monotonic() - began
        if answer is None:
            # SIGXCPU and SIGKILL: the CPU limit, or the parent's wait ran out.
            timed_out = elapsed >= limits.wall_seconds or child.exitcode in (-24, -9)
            log.warning(
                "Media step %s stopped (exit code %s after %.1f s)",
                getattr(step, "__name__", step),
                child.exitcode,
                elapsed,
            )
            raise _stopped(what, name, limits, "time" if timed_out else "failed")
        status, value, usage = answer
        usage.wall_seconds = elapsed
        if on_usage is not None:
            on_usage(usage)
        if status == "ok":
            return _unspill(value)
        if status == "refused":
            raise value
        raise _stopped(what, name, limits, status)


def run_all(
    jobs: Sequence[tuple[Callable, tuple, str]],
    *,
    limits: Limits,
    what: str = "check",
    on_usage: Callable[[Usage], None] | None = None,
) -> list[Any]:
    """Several steps (``(step, args, name)``) side by side; each one's result or MediaError."""

    def one(job):
        step, args, name = job
        try:
            return run(step, *args, limits=limits, name=name, what=what, on_usage=on_usage)
        except MediaError as error:
            return error

    if len(jobs) <= 1:
        return [one(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(SLOTS, len(jobs))) as pool:
        return list(pool.map(one, jobs))
