"""README.md's REST API example, run as written: curl sends an MMS with a file to a live
portal, which queues it; sent, it reaches the emulator as an MMS."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from messaging.models import OutboundMessage
from messaging.sending.attempt import attempt
from tests import media_samples
from tests.api_fixtures import key_for
from tests.rc_fixtures import journal
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- api-example:begin -->\s*```sh\n(.*?)```\s*<!-- api-example:end -->", text, re.S
    )
    assert found, "README.md lacks the REST API example"
    return "\n".join(line.strip() for line in found.group(1).strip().splitlines())


@pytest.mark.usefixtures("fresh_limits")
@pytest.mark.django_db(transaction=True)
def test_the_readme_curl_example_sends_an_mms(
    emulator,
    api_link,
    team,
    alice,
    live_server,
    tmp_path,
):
    (tmp_path / "map.png").write_bytes(media_samples.png(120, 90))
    secret = key_for(team, alice).secret
    environment = {**os.environ, "MMSPORTAL_URL": live_server.url, "MMSPORTAL_API_KEY": secret}

    for _ in range(2):  # run twice: the Idempotency-Key makes it one message
        result = subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + readme_example() + ' -w "\\n%{http_code}"'],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith("201"), result.stdout

    [message] = OutboundMessage.objects.all()
    assert message.attachments.count() == 1
    assert message.text.startswith("Here is how to find us.")
    assert attempt(message.pk).what == "sent"
    [sent] = [e for e in journal(emulator, "/sms") if e.method == "POST"]
    assert "multipart" in (sent.header("Content-Type") or "").lower()
