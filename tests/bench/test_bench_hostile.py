"""What a hostile upload costs: CPU and peak memory of the child that checks it, and the growth
of the web process that received it.

Run with `make bench` (BENCH=1). Each file goes through `uploads.ingest_source` (the path of an
upload Django spooled to disk) from a fresh Python process that stands for a web process; a
file that is accepted is then fitted into a share of RingCentral's budget the same way. The
child reports its CPU time and its peak resident memory above its start; the web process its
own peak (VmHWM, reset before the upload) above its RSS before it. Results are written to
docs/benchmarks.md under "## Hostile uploads"; nothing is asserted about time or memory (the
targets: at most 10 s of CPU and 300 MB in the child, and 50 MB of growth in the web process).
"""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.utils import timezone

from tests import media_samples as samples
from tests.bench.report import machine, replace_section

pytestmark = pytest.mark.skipif(
    os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"
)

SECTION = "## Hostile uploads"

# Runs in a fresh process standing for a web process: argv = name, path, fit target (0: none).
CHILD = r"""
import json, os, sys, time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django
django.setup()

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0

from dataclasses import replace
from messaging.compose import media, uploads
from messaging.compose.media import isolation

name, path, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
isolation.run(os.getpid, limits=isolation.Limits(), name="warm-up")
result = {"bytes": Path(path).stat().st_size}
Path("/proc/self/clear_refs").write_text("5")
base = status("VmRSS")
used = []
start = time.perf_counter()
try:
    checked = uploads.ingest_source(name, path, on_usage=used.append)
    result["outcome"] = f"accepted: {checked.width:,} × {checked.height:,} {checked.label}"
except media.MediaError as refused:
    checked = None
    result["outcome"] = "refused: " + refused.message
result["check"] = {
    "wall": time.perf_counter() - start,
    "cpu": used[0].cpu_seconds if used else None,
    "peak": used[0].peak_bytes if used else None,
}
if checked is not None and target:
    used.clear()
    # Fitted from what the check made, as from a stored draft (a HEIC is a JPEG by now).
    stored = path + ".checked"
    Path(stored).write_bytes(checked.data)
    checked._data = None
    light = replace(checked, loader=None, path=None, thumbnail=None)
    start = time.perf_counter()
    fitted = isolation.run(
        isolation.shrink_source, light, stored, target, uploads.image_budget(),
        limits=uploads.step_limits(), name=name, what="fit", on_usage=used.append,
    )
    result["fit"] = {
        "wall": time.perf_counter() - start,
        "cpu": used[0].cpu_seconds,
        "peak": used[0].peak_bytes,
        "outcome": f"{fitted.width:,} × {fitted.height:,}, {fitted.size:,} bytes",
    }
result["web_growth"] = status("VmHWM") - base
print(json.dumps(result))
"""

# name, how it is made, fit target for an accepted file, what was measured before the budget.
CASES = [
    (
        "party.gif",
        lambda: samples.gif_screen_bomb(),
        0,
        "40 s of CPU, 584 MB in the web process",
    ),
    (
        "screen.png",
        lambda: samples.png_solid(),
        500_000,
        "web process from 132 MB to 878 MB",
    ),
    (
        "poster.jpg",
        lambda: samples.with_jpeg_size(samples.jpeg_progressive(subsampling=0), 7000, 7000),
        0,
        "",
    ),
    ("scans.jpg", lambda: samples.jpeg_many_scans(150), 0, ""),
    ("IMG_48MP.jpg", lambda: samples.photo(8000, 6000, seed=7), 500_000, ""),
    (
        "sticker.webp",
        lambda: samples.with_webp_canvas(samples.webp_animated(400), 4000, 4000),
        0,
        "",
    ),
    ("burst.heic", lambda: samples.with_heic_size(samples.heic_frames(3), 8000, 5000), 0, ""),
    ("IMG_12MP.heic", lambda: samples.heic(4000, 3000), 500_000, ""),
    ("IMG_24MP.heic", lambda: samples.heic(6000, 4000), 500_000, ""),
    ("IMG_48MP.heic", lambda: samples.heic(8064, 6048), 0, ""),
    ("fax.tiff", lambda: samples.tiff_pages(400, (7000, 7000)), 0, ""),
]


def measure(tmp_path, name, make, target) -> dict:
    path = tmp_path / name
    path.write_bytes(make())
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(path), str(target)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_hostile_upload_benchmarks(tmp_path):
    rows = [
        (name, before, measure(tmp_path, name, make, target))
        for name, make, target, before in CASES
    ]
    _write_report(rows)


def _mb(value) -> str:
    return "—" if value is None else f"{value / 1_000_000:.1f} MB"


def _s(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _write_report(rows) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        SECTION,
        "",
        "Hostile and heavy uploads through `uploads.ingest_source` (checked in a child process "
        f"under the media limits: {settings.COMPOSE_MEDIA_MEMORY_LIMIT // 1_000_000} MB, "
        f"{settings.COMPOSE_MEDIA_TIME_LIMIT} s of CPU; images over "
        f"{settings.COMPOSE_IMAGE_MAX_PIXELS // 1_000_000} megapixels in all frames refused from "
        "their header), from a fresh process standing for a web process; an accepted picture is "
        "then fitted into 500 kB the same way. Targets: at most 10 s of CPU and 300 MB in the "
        "child, at most 50 MB of growth in the web process. One run each. Produced by "
        "`tests/bench/test_bench_hostile.py`.",
        "",
        f"- Date: {timezone.now():%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Load average (1 min) at the end: {load:.2f} (other work on the machine "
        "inflates wall times, not CPU)",
        "",
        "| File | Bytes | Outcome | Check: CPU (s) / child peak | Fit: CPU (s) / child peak "
        "| Web process growth | Before the budget |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for name, before, row in rows:
        check, fit = row["check"], row.get("fit")
        outcome = row["outcome"].replace("|", "/")
        fitted = f"{_s(fit['cpu'])} / {_mb(fit['peak'])}" if fit else "—"
        lines.append(
            f"| `{name}` | {row['bytes']:,} | {outcome} | {_s(check['cpu'])} / "
            f"{_mb(check['peak'])} | {fitted} | {_mb(row['web_growth'])} | {before or '—'} |"
        )
    lines += [
        "",
        "A refused file is refused from its header, in the child: its numbers are those of "
        "reading a header (a dash: nothing to fit). The web process grows by the checked file "
        "it gets back and stores (and little else). A 48-megapixel HEIC needs more memory to "
        "decode than one file is given by default (libheif's picture and Pillow's copy of it, "
        "about 8 bytes a pixel); raising `COMPOSE_MEDIA_MEMORY_LIMIT` to 500 MB lets it in.",
    ]
    replace_section(SECTION, "\n".join(lines) + "\n")
