"""The chaos run at CI size as a test: skipped unless CHAOS=1 (`make chaos-ci` sets it).

It runs tests/chaos/chaos.py in a process of its own (its own settings, database and queue,
never the test database), and passes when the run's checks pass: no message sent twice, none
lost, every one final. The figures are printed; run with `-s` to see them as they come.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("CHAOS") != "1", reason="the chaos run needs CHAOS=1 (make chaos-ci)"
)

MESSAGES = int(os.environ.get("CHAOS_MESSAGES", "100"))
SECONDS = int(os.environ.get("CHAOS_SECONDS", "60"))
SETTLE = int(os.environ.get("CHAOS_SETTLE", "120"))
# Setting up (database, migrations, workers) and tearing down take well under this.
OVERHEAD = 240


def test_under_chaos_no_message_is_sent_twice_or_lost_and_every_one_ends_final():
    command = [
        sys.executable,
        "-m",
        "tests.chaos.chaos",
        f"--messages={MESSAGES}",
        f"--seconds={SECONDS}",
        f"--settle={SETTLE}",
    ]
    if os.environ.get("CHAOS_SEED"):
        command.append(f"--seed={os.environ['CHAOS_SEED']}")
    result = subprocess.run(
        command, cwd=Path(__file__).resolve().parents[2], timeout=SECONDS + SETTLE + OVERHEAD
    )
    assert result.returncode == 0, "the chaos run's checks failed (figures above)"
