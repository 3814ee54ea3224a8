"""The load run: a team's members on the portal at once, measured from the outside.

    python -m tests.load.run --users 50 --run-time 60s [--report docs/reliability.md]

`make load` runs it at 50 users for 60 s and writes the figures to docs/reliability.md (`## Load`).

1. A world of its own: a PostgreSQL database `mmsportal_load` (created, migrated, dropped at
   the end) and Redis database 9 (flushed before and after); files and logs in a temporary
   folder; static files collected into the project's `staticfiles/` as a deployment would.
2. The RingCentral emulator in this process on a loopback port, with RingCentral's own rate
   limits; two RingCentral users linked through the real OAuth code exchange and shared with
   the team.
3. A team with `--members` members (sender role) and `--messages` messages of history over three
   months: mostly delivered, some failed or unconfirmed, groups, files, attempts and timelines.
   One signed-in session per member.
4. gunicorn (`--gunicorn-workers` sync workers) on a free loopback port with the production
   settings (DEBUG off, behind a TLS-ending proxy: every request says `X-Forwarded-Proto:
   https`), and two Celery workers and beat sending what the members compose.
5. locust, headless, `--users` members for `--run-time` (tests/load/locustfile.py: the outbox,
   folders, search, older pages, message pages, the live status endpoint, and composing).
6. Figures per request kind (count, failures, median, p95, p99, max, rate) and over all; the
   run passes with no failed request and a p95 over all requests of at most `--p95-target` ms.

Exit status: 0 passed, 1 a target was missed, 2 the run could not be set up.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

from tests.chaos.services import (
    BASE_DIR,
    PG_SERVER,
    Service,
    create_database,
    drop_database,
    redis_flush,
    redis_ok,
)

DB_NAME = "mmsportal_load"
REDIS_DB = 9
CLIENT_ID, CLIENT_SECRET = "mmsportal-load", "load-run-secret"
CALLBACK = "http://127.0.0.1:8000/ringcentral/callback/"
SENDER_NUMBERS = ("+16505550150", "+16505550151")
PATIENTS = [f"+1650555{n:04d}" for n in range(1000, 1400)]
TEXTS = (
    "Reminder: your appointment is on Tuesday at {h}:00. Reply C to confirm.",
    "Your invoice #{n} is ready; you can pay at the front desk.",
    "Your prescription refill is ready for pickup.",
    "We moved your cleaning to Thursday {h}:30. Call us if that does not suit you.",
    "Thanks for visiting Riverside Dental! Here is the form we talked about.",
)
# History: mostly delivered; a few of everything that ends differently. Only final statuses,
# so the workers leave the history alone and work only on what the members compose.
MIX = (
    ("delivered", 82),
    ("delivery_failed", 4),
    ("sending_failed", 1),
    ("failed", 4),
    ("no_receipt", 4),
    ("canceled", 5),
)


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


class LoadRun:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="mmsportal-load-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.services: list[Service] = []
        self.emu = None
        self.port = free_port()
        self.figures: dict = {}

    # -- setup ----------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        return {
            "DJANGO_SETTINGS_MODULE": "mmsportal.settings",
            "DEBUG": "False",
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "ALLOWED_HOSTS": "127.0.0.1",
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "DATA_DIR": str(self.tmp / "data"),
            "MEDIA_ROOT": str(self.tmp / "media"),
            "RINGCENTRAL_SERVER_URL": self.emu.base_url,
            "RINGCENTRAL_CLIENT_ID": CLIENT_ID,
            "RINGCENTRAL_CLIENT_SECRET": CLIENT_SECRET,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    def setup(self) -> None:
        from messaging.ringcentral.emulator import Emulator, EmulatorConfig

        if not redis_ok():
            raise RuntimeError("Redis does not answer on 127.0.0.1:6379")
        self.emu = Emulator(EmulatorConfig(consent_page=False)).start(host="127.0.0.1", port=0)
        self.emu.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[CALLBACK])
        env = self.environment()
        os.environ.update(env)
        (self.tmp / "data").mkdir()
        (self.tmp / "media").mkdir()
        create_database(DB_NAME)
        redis_flush(REDIS_DB)

        import django

        django.setup()
        # This process reports on stdout; what the portal logs here goes to a file.
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(logging.FileHandler(self.logs / "run.log"))
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        call_command("collectstatic", verbosity=0, interactive=False)
        started = time.monotonic()
        self.seed()
        log(f"seeded in {time.monotonic() - started:.0f} s")

        child_env = {**os.environ, **env}
        gunicorn = Service(
            "gunicorn",
            [
                "gunicorn",
                "mmsportal.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.args.gunicorn_workers),
                "--timeout",
                "30",
            ],
            child_env,
            self.logs,
        )
        celery = ["celery", "-A", "mmsportal"]
        workers = [
            Service(
                f"worker{i}",
                [
                    *celery,
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "1",
                    "--hostname",
                    "load-{n}@%h",
                ],
                child_env,
                self.logs,
            )
            for i in (1, 2)
        ]
        beat = Service(
            "beat",
            [*celery, "beat", "--schedule", str(self.tmp / "data" / "beat")],
            child_env,
            self.logs,
        )
        self.services = [gunicorn, *workers, beat]
        for service in self.services:
            service.start()
        wait_http(f"http://127.0.0.1:{self.port}/healthz")
        for worker in workers:
            worker.wait_ready(" ready.")

    def seed(self) -> None:
        """The team, its RingCentral links, its history and one session per member."""
        from django.contrib.auth import (
            BACKEND_SESSION_KEY,
            HASH_SESSION_KEY,
            SESSION_KEY,
            get_user_model,
        )
        from django.contrib.sessions.backends.db import SessionStore
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage
        from django.utils import timezone

        from messaging.links import connections
        from messaging.models import (
            ACCEPTED_STATUSES,
            Attachment,
            Membership,
            MessageEvent,
            OutboundMessage,
            Recipient,
            Role,
            SendAttempt,
        )
        from messaging.ringcentral import oauth
        from messaging.teams import actions as teams
        from messaging.teams.actions import SESSION_KEY as TEAM_KEY
        from tests import media_samples

        rng = self.rng
        users = get_user_model().objects.bulk_create(
            get_user_model()(username=f"member{i}", email=f"member{i}@riverside.example")
            for i in range(self.args.members)
        )
        owner = users[0]
        team = teams.create_team(owner, "Riverside Dental")
        Membership.objects.bulk_create(
            Membership(team=team, user=user, role=Role.SENDER) for user in users[1:]
        )
        numbers = []
        for k, phone in enumerate(SENDER_NUMBERS):
            extension = self.emu.add_extension(
                name=f"Front desk {k + 1}",
                numbers=[{"phone_number": phone, "features": ["SmsSender", "MmsSender"]}],
            )
            verifier, challenge = oauth.pkce_pair()
            code = self.emu.authorize_code(
                CLIENT_ID, CALLBACK, extension.id, code_challenge=challenge
            )
            connection, _ = connections.link(
                team, owner, oauth.exchange_code(code, CALLBACK, verifier)
            )
            connection.shared_with_team = True
            connection.save(update_fields=["shared_with_team"])
            connections.sync_numbers(connection)
            numbers.append(connection.numbers.get(phone_number=phone))

        files = [
            ("photo.jpg", "image/jpeg", media_samples.photo(640, 480, seed=3)),
            ("form.pdf", "application/pdf", media_samples.pdf(30_000)),
        ]
        stored = [
            (
                name,
                kind,
                data,
                default_storage.save(f"attachments/{team.pk}/{name}", ContentFile(data)),
            )
            for name, kind, data in files
        ]

        statuses = [status for status, weight in MIX for _ in range(weight)]
        now = timezone.now()
        ages = sorted(
            (rng.uniform(60, 90 * 86400) for _ in range(self.args.messages)), reverse=True
        )
        rows, to = [], []
        for i, age in enumerate(ages):
            status = rng.choice(statuses)
            created = now - timedelta(seconds=age)
            accepted = status in ACCEPTED_STATUSES
            number = numbers[i % len(numbers)]
            to.append(rng.sample(PATIENTS, rng.randint(2, 4) if rng.random() < 0.15 else 1))
            rows.append(
                OutboundMessage(
                    team=team,
                    connection=number.connection,
                    sender_number=number,
                    from_number=number.phone_number,
                    created_by=users[rng.randrange(len(users))],
                    text=rng.choice(TEXTS).format(h=rng.randint(8, 17), n=10_000 + i),
                    is_group=len(to[-1]) > 1,
                    status=status,
                    attempts=1 if status != "canceled" else 0,
                    created_at=created,
                    sent_at=created + timedelta(seconds=2) if accepted else None,
                    final_at=created + timedelta(seconds=40),
                    rc_message_id=str(4_000_000_000_000 + i) if accepted else None,
                    error_reason="The carrier did not accept the message." if not accepted else "",
                )
            )
        messages = OutboundMessage.objects.bulk_create(rows, batch_size=1000)
        recipients, attachments, attempts, events = [], [], [], []
        for message, phones in zip(messages, to, strict=True):
            for phone in phones:
                recipients.append(
                    Recipient(
                        message=message,
                        phone_number=phone,
                        status="delivered" if message.status == "delivered" else "failed",
                    )
                )
                if message.status == "delivered":
                    events.append(
                        MessageEvent(
                            message=message,
                            at=message.final_at,
                            kind="recipient_status",
                            text=f"Delivered to {phone}.",
                        )
                    )
            if rng.random() < 0.08:
                name, kind, data, key = rng.choice(stored)
                attachment = Attachment(
                    message=message,
                    original_name=name,
                    content_type=kind,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
                attachment.file.name = key
                attachments.append(attachment)
            if message.status != "canceled":
                attempts.append(
                    SendAttempt(
                        message=message,
                        number=1,
                        started_at=message.created_at,
                        finished_at=message.created_at + timedelta(seconds=1),
                        http_status=200 if message.status in ACCEPTED_STATUSES else 400,
                        outcome="accepted" if message.status in ACCEPTED_STATUSES else "permanent",
                    )
                )
        Recipient.objects.bulk_create(recipients, batch_size=2000)
        Attachment.objects.bulk_create(attachments, batch_size=1000)
        SendAttempt.objects.bulk_create(attempts, batch_size=2000)
        MessageEvent.objects.bulk_create(events, batch_size=2000)
        from django.db import connection as db

        with db.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

        members = []
        for k, user in enumerate(users):
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session[TEAM_KEY] = team.pk
            session.create()
            members.append(
                {"session": session.session_key, "sender_id": numbers[k % len(numbers)].pk}
            )
        self.sessions = self.tmp / "sessions.json"
        self.sessions.write_text(
            json.dumps({"members": members, "message_ids": [m.pk for m in messages]})
        )
        self.team = team
        self.seeded = {
            "messages": len(messages),
            "recipients": len(recipients),
            "attachments": len(attachments),
            "events": len(events),
        }

    # -- the run --------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Each kind of page a few times per gunicorn worker, as a running deployment has been
        asked before (imports, template compilation, connections): the run measures a warm
        portal, not its first requests."""
        seed = json.loads(self.sessions.read_text())
        ids = seed["message_ids"]
        paths = [
            "/messages/",
            "/messages/?folder=delivered",
            "/messages/?q=appointment",
            f"/messages/{ids[-1]}/",
            "/messages/status/?ids=" + ",".join(map(str, ids[-50:])),
            "/messages/compose/",
        ]
        headers = {
            "X-Forwarded-Proto": "https",
            "Cookie": f"sessionid={seed['members'][0]['session']}",
        }
        for _ in range(3 * self.args.gunicorn_workers):
            for path in paths:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}{path}", headers=headers
                )
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                    response.read()

    def locust(self) -> Path:
        prefix = self.tmp / "locust"
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(BASE_DIR / "tests" / "load" / "locustfile.py"),
            "--headless",
            "--users",
            str(self.args.users),
            "--spawn-rate",
            str(self.args.spawn_rate),
            "--run-time",
            self.args.run_time,
            "--host",
            f"http://127.0.0.1:{self.port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "10",
            "--exit-code-on-error",
            "0",
        ]
        env = {**os.environ, "LOAD_SESSIONS": str(self.sessions)}
        limit = parse_seconds(self.args.run_time) + 120
        with open(self.logs / "locust.log", "w") as out:
            subprocess.run(
                command,
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=limit,
                check=True,
            )
        return Path(f"{prefix}_stats.csv")

    def execute(self) -> int:
        began = time.monotonic()
        try:
            try:
                self.setup()
            except Exception as exc:
                log(f"setup failed: {exc!r}")
                return 2
            log(
                f"portal on http://127.0.0.1:{self.port} (gunicorn × {self.args.gunicorn_workers}),"
                f" 2 workers and beat; {self.args.users} users for {self.args.run_time}"
            )
            from django.utils import timezone

            self.warm_up()
            started = timezone.now()
            self.figures["load_before"] = os.getloadavg()[0]
            stats = self.locust()
            self.figures["load_after"] = os.getloadavg()[0]
            passed = self.collect(stats, started)
            self.figures["total_seconds"] = round(time.monotonic() - began)
            text = self.render(passed)
            print(text, flush=True)
            if self.args.report:
                from tests.chaos.report import replace_section

                replace_section(Path(self.args.report), "Load", text)
                log(f"figures written to {self.args.report}")
            return 0 if passed else 1
        finally:
            self.teardown()

    def collect(self, stats: Path, started) -> bool:
        from django.db.models import Count

        from messaging.models import OutboundMessage

        with open(stats) as handle:
            rows = list(csv.DictReader(handle))
        self.figures["rows"] = rows
        total = next(r for r in rows if r["Name"] == "Aggregated")
        composed = (
            OutboundMessage.objects.filter(team=self.team, created_at__gte=started)
            .values("status")
            .annotate(n=Count("id"))
        )
        self.figures["composed"] = {row["status"]: row["n"] for row in composed}
        failures = int(total["Failure Count"])
        p95 = float(total["95%"])
        return failures == 0 and p95 <= self.args.p95_target

    def teardown(self) -> None:
        for service in self.services:
            try:
                service.stop()
            except Exception as exc:
                log(f"stopping {service.name}: {exc!r}")
        if self.emu is not None:
            self.emu.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception as exc:
            log(f"closing database connections: {exc!r}")
        try:
            drop_database(DB_NAME)
            redis_flush(REDIS_DB)
        except Exception as exc:
            log(f"cleaning up: {exc!r}")
        if self.args.keep:
            log(f"logs kept in {self.logs}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- report ---------------------------------------------------------------------------------

    def render(self, passed: bool) -> str:
        from tests.chaos.report import machine, now_utc, server_versions

        rows = self.figures["rows"]
        seeded = self.seeded

        def ms(value: str) -> str:
            return f"{float(value):.0f}" if value not in ("", "N/A") else "–"

        table = [
            "| Request | Count | Failures | Median ms | p95 ms | p99 ms | Max ms | Per second |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in sorted(rows, key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
            name = (
                "**All requests**"
                if row["Name"] == "Aggregated"
                else f"{row['Type']} `{row['Name']}`"
            )
            table.append(
                f"| {name} | {row['Request Count']} | {row['Failure Count']} | "
                f"{ms(row['Median Response Time'])} | {ms(row['95%'])} | {ms(row['99%'])} | "
                f"{ms(row['Max Response Time'])} | {float(row['Requests/s']):.1f} |"
            )
        total = next(r for r in rows if r["Name"] == "Aggregated")
        composed = self.figures["composed"]
        accepted = sum(n for s, n in composed.items() if s in ("sent", "delivered"))
        command = (
            f"python -m tests.load.run --users {self.args.users} --run-time {self.args.run_time}"
        )
        lines = [
            f"Run {now_utc()} on {machine()}; {server_versions(os.environ.get('DATABASE_URL'))}.",
            "",
            f"`{command}`: locust (headless, {self.args.spawn_rate} users started per second, "
            f"1–4 s between a user's actions) against gunicorn ({self.args.gunicorn_workers} sync "
            "workers, production settings behind a TLS-ending proxy) with PostgreSQL, Redis, two "
            "Celery workers and beat, the emulator standing in for RingCentral; all on loopback. "
            f"One team of {self.args.members} signed-in members with {seeded['messages']:,} "
            f"messages of history ({seeded['recipients']:,} recipients, "
            f"{seeded['attachments']} with a file, {seeded['events']:,} timeline lines). "
            f"The machine's load average (1 min) was {self.figures['load_before']:.1f} before "
            f"the run and {self.figures['load_after']:.1f} at its end: everything, locust "
            "included, shares its cores.",
            "",
            *table,
            "",
            f"Composed during the run: {sum(composed.values())} messages; "
            f"accepted by RingCentral by the time it stopped: {accepted} (the others were still "
            "on their way, paced by RingCentral's limits).",
            "",
            f"**{'PASSED' if passed else 'FAILED'}**: {total['Failure Count']} failed requests "
            f"(target 0), p95 over all requests {ms(total['95%'])} ms (target ≤ "
            f"{self.args.p95_target} ms).",
        ]
        return "\n".join(lines)


def parse_seconds(value: str) -> int:
    """locust's run-time syntax (`60s`, `2m`, `1h30m`) in seconds."""
    total, number = 0, ""
    for char in value:
        if char.isdigit():
            number += char
        else:
            total += int(number or 0) * {"s": 1, "m": 60, "h": 3600}[char]
            number = ""
    return total + int(number or 0)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--run-time", default="60s")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--p95-target", type=float, default=300)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--report", help="write the figures to this file's ## Load section")
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return LoadRun(parse_args(argv)).execute()


if __name__ == "__main__":
    sys.exit(main())
