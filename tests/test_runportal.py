"""`make run`'s process: web, worker, beat and the demo emulator come up together and go away
together."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from django.conf import settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_runportal_serves_pages_and_health_then_stops_everything_on_sigterm(tmp_path):
    web, emulator = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "RINGCENTRAL_CLIENT_ID")
    }
    env.update(DATA_DIR=str(tmp_path), DEMO_EMULATOR_PORT=str(emulator), DEBUG="true")
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, timeout=180)
    portal = subprocess.Popen(
        [*manage, "runportal", "--port", str(web)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(portal.stdout), daemon=True).start()
    announced = f"mmsportal is running at http://127.0.0.1:{web}/"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(announced in line for line in lines):
            assert portal.poll() is None, "".join(lines)
            time.sleep(0.2)
        assert get(f"http://127.0.0.1:{web}/healthz")[0] == 200
        status, body = get(f"http://127.0.0.1:{web}/")
        assert status == 200
        assert b"Demo mode" in body
        assert get(f"http://127.0.0.1:{emulator}/_emulator/health")[0] == 200
    finally:
        portal.send_signal(signal.SIGTERM)
        portal.wait(timeout=60)
    assert any(announced in line for line in lines)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"runserver 127.0.0.1:{web}|rc_emulator --port {emulator}"],
        capture_output=True,
        text=True,
    )
    assert leftovers.stdout == ""
