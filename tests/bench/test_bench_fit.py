"""Compose benchmarks: checking and fitting ten 12-megapixel photos, and the page's weight.

Run with `make bench` (BENCH=1). Each measurement runs in a fresh Python process that stands for
a web process: it checks the photos (each in a child process under the media limits, one after
the other or two at once) and fits them (children side by side), and reports wall time, the
CPU its children used, the largest child's peak resident memory above its start, and its own
growth (VmHWM above its RSS before the step, reset where the kernel allows it). Results are
written to docs/benchmarks.md under "## Compose"; nothing is asserted about time or memory.
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
# Photo counts measured with two uploads checked at once, to show memory flat in the count.
COUNTS = (2, 5, PHOTOS)
SECTION = "## Compose"

# Runs in a fresh process that stands for a web process: argv = photo paths; prints one JSON
# line. Checking and fitting go through messaging/compose/uploads.py, so each file is checked
# and each photo fitted in a child process under the media limits, as the portal does.
CHILD = r"""
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()

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

from messaging.compose import uploads
from messaging.compose.media import isolation
from messaging.ringcentral import limits
paths = sys.argv[2:]
side_by_side = int(sys.argv[1])
result = {"input_bytes": sum(Path(p).stat().st_size for p in paths)}
# The forkserver starts with the first step of a process; a web process pays that once.
isolation.run(os.getpid, limits=isolation.Limits(), name="warm-up")

children = []
result["peak_reset"] = reset_peak()
base = status("VmRSS")
cpu = time.process_time()
start = time.perf_counter()
def check(path):
    checked = uploads.ingest_source(Path(path).name, path, on_usage=children.append)
    # Stored as a draft at once, as the upload view does: the web process keeps no bytes.
    checked._data, checked.path = None, path
    return checked

with ThreadPoolExecutor(side_by_side) as pool:
    files = list(pool.map(check, paths))
result["ingest_seconds"] = time.perf_counter() - start
result["ingest_cpu"] = sum(u.cpu_seconds for u in children)
result["ingest_child_peak"] = max(u.peak_bytes for u in children)
result["ingest_rss_peak"] = status("VmHWM") - base

children.clear()
reset_peak()
base = status("VmRSS")
start = time.perf_counter()
fitted = uploads.fit_photos(files, on_usage=children.append)
result["fit_seconds"] = time.perf_counter() - start
result["fit_cpu"] = sum(u.cpu_seconds for u in children)
result["fit_child_peak"] = max(u.peak_bytes for u in children)
result["fit_steps"] = len(children)
result["fit_rss_peak"] = status("VmHWM") - base
result["parent_cpu"] = time.process_time() - cpu
result["rss_baseline"] = base
result["sizes"] = [f.size for f in fitted]
result["dims"] = [[f.width, f.height] for f in fitted]
print(json.dumps(result))
"""


def fit_in_child(paths, side_by_side: int) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(side_by_side), *map(str, paths)],
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
    rows = {}
    for count, side_by_side in ((PHOTOS, 1), *((n, 2) for n in COUNTS)):
        runs = [fit_in_child(paths[:count], side_by_side) for _ in range(RUNS)]
        assert all(sum(r["sizes"]) <= limits.MAX_ATTACHMENTS_BYTES for r in runs)
        last = runs[-1]
        rows[(count, side_by_side)] = {
            "input_bytes": last["input_bytes"],
            "ingest_seconds": statistics.median(r["ingest_seconds"] for r in runs),
            "fit_seconds": statistics.median(r["fit_seconds"] for r in runs),
            "total_seconds": statistics.median(
                r["ingest_seconds"] + r["fit_seconds"] for r in runs
            ),
            "ingest_cpu": statistics.median(r["ingest_cpu"] for r in runs),
            "fit_cpu": statistics.median(r["fit_cpu"] for r in runs),
            "parent_cpu": statistics.median(r["parent_cpu"] for r in runs),
            "child_peak": max(max(r["ingest_child_peak"], r["fit_child_peak"]) for r in runs),
            "ingest_rss_peak": max(r["ingest_rss_peak"] for r in runs),
            "fit_rss_peak": max(r["fit_rss_peak"] for r in runs),
            "fit_steps": last["fit_steps"],
            "rss_baseline": last["rss_baseline"],
            "peak_reset": all(r["peak_reset"] for r in runs),
            "sizes": last["sizes"],
            "dims": last["dims"],
        }
    return rows


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


def _write_report(rows: dict, weight: dict) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    fit = rows[(PHOTOS, 2)]
    one_by_one = rows[(PHOTOS, 1)]
    cores = os.cpu_count() or 1
    per_photo = statistics.mean(fit["sizes"])
    dims = fit["dims"]
    total_raw = sum(raw for raw, _ in weight.values())
    total_gz = sum(gz for _, gz in weight.values())
    lines = [
        SECTION,
        "",
        f"Checking and fitting {PHOTOS} photos of {SIZE[0]:,} × {SIZE[1]:,} pixels (photo-like "
        f"JPEGs, {mb(fit['input_bytes'])} together) into RingCentral's "
        f"{limits.format_size(limits.MAX_ATTACHMENTS_BYTES)}, as the portal does it: each file "
        "checked (`uploads.ingest_source`) and each photo fitted (`uploads.fit_photos`) in a "
        "child process under the media limits, from a fresh process standing for a web process "
        f"(its forkserver already started). Median of {RUNS} runs. Produced by "
        "`tests/bench/test_bench_fit.py`.",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Load average (1 min) at the end: {load:.2f} (other work on the machine inflates times)",
        "",
        "| Photos | Uploads checked at once | Check (s) | Fit (s) | Check + fit (s) | CPU of "
        "the children: check + fit (s) | Largest child's peak | Web process growth: check / "
        "fit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (count, side_by_side), row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(
            f"| {count} | {side_by_side} | {row['ingest_seconds']:.2f} | "
            f"{row['fit_seconds']:.2f} | {row['total_seconds']:.2f} | "
            f"{row['ingest_cpu']:.2f} + {row['fit_cpu']:.2f} | {mb(row['child_peak'])} | "
            f"{mb(row['ingest_rss_peak'])} / {mb(row['fit_rss_peak'])} |"
        )
    lines += [
        "",
        f"Before the media budget (2026-12-07, in the web process, one photo after the other): "
        "1.51 s to check and 1.97 s to fit ten photos, 66 MB and 30 MB above a baseline that "
        f"held every photo. Now: {one_by_one['ingest_seconds']:.2f} s to check them one after "
        f"the other, {fit['ingest_seconds']:.2f} s two at a time (the compose page uploads "
        f"files side by side), {fit['fit_seconds']:.2f} s to fit ({fit['fit_steps']} child "
        "steps, as many side by side as there are cores). The children's CPU for the ten, "
        f"{fit['ingest_cpu'] + fit['fit_cpu']:.2f} s over {os.cpu_count()} cores, bounds what "
        f"an idle machine would take: {(fit['ingest_cpu'] + fit['fit_cpu']) / cores:.2f} s.",
        "",
        f"Result: {sum(fit['sizes']):,} bytes in all; each photo {min(fit['sizes']):,}–"
        f"{max(fit['sizes']):,} bytes (mean {per_photo:,.0f}), "
        f"{min(d[0] for d in dims):,}–{max(d[0] for d in dims):,} pixels wide. Baseline RSS of "
        f"the web process: {mb(fit['rss_baseline'])}."
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
