"""`make run`: the web server, a Celery worker and beat (and, in demo mode, the RingCentral
emulator) as one foreground command. Ctrl-C stops them all; if one dies, the others are stopped
too, so a half-running portal never lingers."""

import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the web app, a Celery worker and beat together (and the emulator in demo mode)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--concurrency", type=int, default=2)
        # Beat and the worker log every periodic tick at INFO (several lines every 5 s), which
        # buries the URL and the sign-up emails printed here; warnings and errors still show.
        parser.add_argument("--celery-log-level", default="WARNING")

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        python = sys.executable
        manage = [python, str(settings.BASE_DIR / "manage.py")]
        commands = {}
        if settings.DEMO_MODE:
            callbacks = [
                f"http://{name}:{port}/ringcentral/callback/" for name in ("127.0.0.1", "localhost")
            ]
            if settings.PUBLIC_BASE_URL:
                callbacks.append(f"{settings.PUBLIC_BASE_URL}/ringcentral/callback/")
            redirect_args = [arg for uri in callbacks for arg in ("--redirect-uri", uri)]
            commands["emulator"] = [
                *manage,
                "rc_emulator",
                "--port",
                str(settings.DEMO_EMULATOR_PORT),
                *redirect_args,
            ]
        commands["web"] = [*manage, "runserver", f"{host}:{port}", "--noreload"]
        celery = [python, "-m", "celery", "-A", "mmsportal"]
        commands["worker"] = [
            *celery,
            "worker",
            "--loglevel",
            options["celery_log_level"],
            "--concurrency",
            str(options["concurrency"]),
        ]
        commands["beat"] = [*celery, "beat", "--loglevel", options["celery_log_level"]]

        env = dict(os.environ)
        if settings.DEMO_MODE and not settings.PUBLIC_BASE_URL:
            # The emulator delivers webhooks to this server (messaging/tracking/subscriptions.py).
            env["DEMO_PORTAL_URL"] = f"http://127.0.0.1:{port}"
        children = {}
        # `kill`, a closed terminal or a supervisor stop us with SIGTERM/SIGHUP rather than
        # Ctrl-C; treat them alike so the children never outlive us.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _raise_keyboard_interrupt)
        try:
            for name, command in commands.items():
                # Each child gets its own process group so Ctrl-C reaches it only through us,
                # and we can stop the worker's pool processes with it.
                children[name] = subprocess.Popen(command, start_new_session=True, env=env)
            url = f"http://{host}:{port}/"
            # "Running" is announced only once everything answers: in demo mode the first
            # link or send goes to the emulator, which may come up after the web server.
            if settings.DEMO_MODE:
                emulator = f"http://127.0.0.1:{settings.DEMO_EMULATOR_PORT}/_emulator/health"
                self._wait_until_healthy(emulator, children)
            self._wait_until_healthy(url + "healthz", children)
            self.stdout.write(self.style.SUCCESS(f"\nmmsportal is running at {url}"))
            if settings.DEMO_MODE:
                self.stdout.write(
                    "Demo mode: RingCentral is emulated. Sign-up emails are printed here.\n"
                )
            self.stdout.write("Press Ctrl-C to stop.\n")
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        raise CommandError(f"The {name} process exited ({child.returncode}).")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            self._stop(children)

    def _wait_until_healthy(self, url, children, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, child in children.items():
                if child.poll() is not None:
                    raise CommandError(f"The {name} process exited ({child.returncode}).")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise CommandError(f"{url} did not answer 200 within {timeout:.0f} s.")

    def _stop(self, children):
        # Ask each main process to stop (Celery then shuts its own pool down cleanly); only
        # what is still alive after the grace period gets its whole process group killed.
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
