"""Compose benchmarks: fitting ten 12-megapixel photos, and the compose page's weight.

Run with `make bench` (BENCH=1). Fitting runs in a fresh Python process so that its peak memory
is its own: the process loads the photos, then reports wall time, the peak of Python's traced
allocations (tracemalloc; Pillow's pixel buffers are not among them) and the peak resident set
size (VmHWM, reset after loading where the kernel allows it). Results are written to
docs/benchmarks.md under "## Compose"; nothing is asserted about time or memory.
"""

import gzip
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from messaging.ringcentral import limits
from tests import media_samples as samples
from tests.bench.report import machine, replace_section
from tests.factories import make_connection, make_number

pytestmark = pytest.mark.skipif(
    os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"
)

PHOTOS = 10
SIZE = (4000, 3000)
RUNS = 3
SECTION = "## Compose"

# Runs in the child process: argv = photo paths; prints one JSON line.
CHILD = r"""
import json, sys, time, tracemalloc
from pathlib import Path

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0

def reset_peak():
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False

from messaging.compose import media
from messaging.ringcentral import limits
paths = sys.argv[1:]
data = [Path(p).read_bytes() for p in paths]
result = {"input_bytes": sum(len(d) for d in data)}

result["peak_reset"] = reset_peak()
base = status("VmRSS")
tracemalloc.start()
start = time.perf_counter()
files = [media.ingest(Path(p).name, d) for p, d in zip(paths, data)]
result["ingest_seconds"] = time.perf_counter() - start
result["ingest_traced_peak"] = tracemalloc.get_traced_memory()[1]
result["ingest_rss_peak"] = status("VmHWM") - base
tracemalloc.stop()

reset_peak()
base = status("VmRSS")
tracemalloc.start()
start = time.perf_counter()
fitted = media.fit_to_budget(files, limits.MAX_ATTACHMENTS_BYTES)
result["fit_seconds"] = time.perf_counter() - start
result["fit_traced_peak"] = tracemalloc.get_traced_memory()[1]
result["fit_rss_peak"] = status("VmHWM") - base
result["rss_baseline"] = base
result["sizes"] = [f.size for f in fitted]
result["dims"] = [[f.width, f.height] for f in fitted]
print(json.dumps(result))
"""


def fit_in_child(paths) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, paths)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def mb(n: float) -> str:
    return f"{n / 1_000_000:.1f} MB"


def measure_fitting(tmp_path) -> dict:
    paths = []
    for i in range(PHOTOS):
        path = tmp_path / f"IMG_{i:04d}.jpg"
        path.write_bytes(samples.photo(*SIZE, seed=100 + i))
        paths.append(path)
    runs = [fit_in_child(paths) for _ in range(RUNS)]
    last = runs[-1]
    assert sum(last["sizes"]) <= limits.MAX_ATTACHMENTS_BYTES
    return {
        "input_bytes": last["input_bytes"],
        "ingest_seconds": statistics.median(r["ingest_seconds"] for r in runs),
        "fit_seconds": statistics.median(r["fit_seconds"] for r in runs),
        "ingest_traced_peak": max(r["ingest_traced_peak"] for r in runs),
        "fit_traced_peak": max(r["fit_traced_peak"] for r in runs),
        "ingest_rss_peak": max(r["ingest_rss_peak"] for r in runs),
        "fit_rss_peak": max(r["fit_rss_peak"] for r in runs),
        "rss_baseline": last["rss_baseline"],
        "peak_reset": all(r["peak_reset"] for r in runs),
        "sizes": last["sizes"],
        "dims": last["dims"],
    }


def measure_page_weight(client, bob, team) -> dict:
    make_number(make_connection(team, bob))
    client.force_login(bob)
    session = client.session
    session["current_team_id"] = team.pk
    session.save()
    html = client.get("/messages/compose/").content
    static = Path(settings.BASE_DIR) / "static"
    assets = {
        "HTML": html,
        "CSS (app.css, shared)": (static / "css" / "app.css").read_bytes(),
        "JS (compose.js)": (static / "js" / "compose.js").read_bytes(),
    }
    return {name: [len(body), len(gzip.compress(body, 9))] for name, body in assets.items()}


@pytest.mark.django_db
def test_compose_benchmarks(tmp_path, client, bob, team):
    _write_report(measure_fitting(tmp_path), measure_page_weight(client, bob, team))


def _write_report(fit: dict, weight: dict) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    per_photo = statistics.mean(fit["sizes"])
    dims = fit["dims"]
    total_raw = sum(raw for raw, _ in weight.values())
    total_gz = sum(gz for _, gz in weight.values())
    lines = [
        SECTION,
        "",
        f"Fitting {PHOTOS} photos of {SIZE[0]:,} × {SIZE[1]:,} pixels (photo-like JPEGs, "
        f"{mb(fit['input_bytes'])} together) into RingCentral's "
        f"{limits.format_size(limits.MAX_ATTACHMENTS_BYTES)}, each in a fresh process, median "
        f"of {RUNS} runs. Produced by `tests/bench/test_bench_fit.py`.",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Load average (1 min) at the end: {load:.2f} (other work on the machine inflates times)",
        "",
        "| Step | Time (s) | Peak RSS above baseline | Peak traced Python memory |",
        "|---|---:|---:|---:|",
        f"| Check and normalise {PHOTOS} uploads (`media.ingest`) | {fit['ingest_seconds']:.2f} "
        f"| {mb(fit['ingest_rss_peak'])} | {mb(fit['ingest_traced_peak'])} |",
        f"| Fit all {PHOTOS} to the budget (`media.fit_to_budget`) | {fit['fit_seconds']:.2f} "
        f"| {mb(fit['fit_rss_peak'])} | {mb(fit['fit_traced_peak'])} |",
        "",
        f"Result: {sum(fit['sizes']):,} bytes in all; each photo {min(fit['sizes']):,}–"
        f"{max(fit['sizes']):,} bytes (mean {per_photo:,.0f}), "
        f"{min(d[0] for d in dims):,}–{max(d[0] for d in dims):,} pixels wide. Baseline RSS with "
        f"the photos loaded: {mb(fit['rss_baseline'])}."
        + ("" if fit["peak_reset"] else " (The kernel did not allow resetting the peak.)"),
        "",
        "Compose page weight (what a browser downloads; the CSS is shared by every page):",
        "",
        "| Part | Bytes | Gzipped |",
        "|---|---:|---:|",
    ]
    for name, (raw, gz) in weight.items():
        lines.append(f"| {name} | {raw:,} | {gz:,} |")
    lines.append(f"| Total | {total_raw:,} | {total_gz:,} |")
    section = "\n".join(lines) + "\n"

    replace_section(SECTION, section)
