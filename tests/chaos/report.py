"""docs/reliability.md: one `## …` section per run kind (Chaos, Load), each rewritten whole by
its own run so that the other sections stay as they were."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

TITLE = "# Reliability\n"
INTRO = """Figures from two runs; each rewrites its own section, with the machine and the date.

- **Chaos** (`make chaos`, tests/chaos/chaos.py): messages created as people would while workers
  are killed, Redis is restarted, PostgreSQL connections are cut and RingCentral (the emulator)
  fails in every way the client tells apart; then every message is checked against what
  RingCentral stored: never sent twice, nothing lost, every one final. A CI-sized run
  (`make chaos-ci`) is part of `.ci/run`.
- **Load** (`make load`, tests/load): 50 signed-in members reading the outbox and composing for
  60 s against gunicorn, PostgreSQL, Redis and the workers. Targets: no failed request, p95 of
  at most 300 ms.
"""


def machine() -> str:
    """One line: CPU model and count, memory, OS, Python, as far as this machine tells."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            found = re.search(r"^model name\s*:\s*(.+)$", handle.read(), re.MULTILINE)
        if found:
            cpu = found.group(1).strip()
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(re.search(r"^MemTotal:\s*(\d+)", handle.read(), re.MULTILINE).group(1))
        memory = f", {kib / 1024 / 1024:.0f} GiB memory"
    except (OSError, AttributeError):
        pass
    return (
        f"{os.cpu_count()} × {cpu}{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def server_versions(database_url: str | None = None) -> str:
    """PostgreSQL and Redis versions as the servers report them (blank when unreachable)."""
    parts = []
    try:
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", "6379", "INFO", "server"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        found = re.search(r"redis_version:(\S+)", out)
        if found:
            parts.append(f"Redis {found.group(1)}")
    except (OSError, subprocess.TimeoutExpired):
        pass
    if database_url:
        try:
            import psycopg

            with psycopg.connect(database_url, connect_timeout=5) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            parts.insert(0, f"PostgreSQL {version.split()[0]}")
        except Exception as exc:
            parts.insert(0, f"PostgreSQL (version not read: {type(exc).__name__})")
    return ", ".join(parts)


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def replace_section(path: Path, heading: str, body: str) -> None:
    """Write `## {heading}` with `body` into `path`, replacing that section if it exists and
    keeping every other section (the file is created with a title when missing)."""
    text = path.read_text() if path.exists() else TITLE + "\n" + INTRO
    section = f"## {heading}\n\n{body.rstrip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip() + "\n")
