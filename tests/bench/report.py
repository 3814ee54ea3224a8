"""Writing benchmark results into docs/benchmarks.md, one `## ` section per benchmark."""

import os
import platform
import re
from pathlib import Path

from django.conf import settings

REPORT = Path(settings.BASE_DIR) / "docs" / "benchmarks.md"


def machine() -> str:
    return (
        f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def replace_section(heading: str, section: str) -> None:
    """Put `section` (which starts with `heading`) in place of that heading's old section, or at
    the end; every other benchmark's section stays as it is."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    REPORT.write_text(text)
