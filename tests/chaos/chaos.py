"""The chaos run: the outbox's promises ("never sent twice, nothing lost") checked under faults.

    python -m tests.chaos.chaos --messages N --seconds S [--report docs/reliability.md]

`make chaos` runs the full size (1000 messages), `make chaos-ci` the CI size (100 messages).

What a run does:

1. Sets up a world of its own: a PostgreSQL database `mmsportal_chaos` (created and migrated
   here, dropped at the end), Redis database 10 with the queue `mmsportal-chaos` (flushed before
   and after), files and logs in a temporary folder. Nothing else on the servers is touched,
   except that Redis itself is restarted (step 3).
2. Starts the RingCentral emulator in this process on a loopback port, with a lifecycle of
   seconds and a rate-limit window of 10 s (the portal's limiter is told the same), and links
   three members of one team, each to their own RingCentral user, through the real OAuth code
   exchange. Then starts `celery beat` and two `celery worker` processes on
   tests/chaos/settings.py (the safety nets every few seconds), with a 2 s read timeout, a 15 s
   sending lease and an 8 s reconcile grace given through the environment.
3. For S seconds, creates N messages through messaging/compose/ as the members would: SMS,
   MMS with files, group messages to 2-5 recipients, a few to numbers the carrier refuses; a
   few are canceled a moment later, racing the workers. Each text carries a marker `[chaos #i]`.
   Meanwhile a chaos thread, on a seeded random timetable, injects 503 and 500 bursts, stalls
   past the read timeout, connections dropped before and after RingCentral stored the message,
   429s on sends and 503s on message-store reads (polls and reconciliation); SIGKILLs a worker
   (its whole process group, or one pool child) every few seconds and starts it again; restarts
   Redis (`shutdown nosave`); and terminates every PostgreSQL connection to the run's database.
   At the same time contacts text the three numbers (`--inbound`, by default as many as the
   messages sent): texts, some with a photo, some to a group, each with a marker
   `[inbound #i]`. A web server (Django's, on a loopback port the run picks) receives
   RingCentral's webhooks, instant messages among them; some deliveries are lost on the way,
   some sent twice. The inbox's sync backs the webhooks up, as it does in production.
4. Stops the chaos, drops the faults still pending, and waits (at most `--settle` seconds) for
   every message to reach a final status and every received text to be in the inbox.
5. Checks, from the emulator's own store and journal and the portal's database:
   - no duplicate: no marker stored twice by RingCentral (every accepted POST and every
     drop-after-store counts);
   - nothing lost: every marker created is one message in the database; every message the
     portal calls accepted is stored once at RingCentral under its `rc_message_id`, with its
     recipients and the sha256 of its files; no message the portal calls failed or canceled
     reached RingCentral; RingCentral has nothing the portal did not create;
   - every text RingCentral received is in the inbox exactly once (its RingCentral id, one
     row; its marker, one row), none lost and none stored twice;
   - every message final (delivered, delivery_failed, sending_failed, failed with a reason,
     canceled); anything else, unknown included, is listed.
6. Prints the figures and, with `--report`, writes them to that file's `## Chaos` section.

Exit status: 0 all checks passed, 1 a check failed, 2 the run could not be set up.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.services import (
    PG_SERVER,
    REDIS_CLI,
    Service,
    create_database,
    drop_database,
    free_port,
    redis_flush,
    redis_ok,
    redis_start,
    terminate_backends,
)

DB_NAME = "mmsportal_chaos"
REDIS_DB = 10
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
QUEUE = "mmsportal-chaos"

# The portal's side, through its ordinary environment variables. The lease must exceed
# 4 x (connect + read) (settings.py checks it), and the grace must exceed the longest time the
# emulator may take to store a send whose answer the client gave up on.
CONNECT_TIMEOUT, READ_TIMEOUT = 1.0, 2.0
LEASE, GRACE, MARGIN = 15, 8, 30
BACKOFF = "0.5,1,2,4,8"
# RingCentral's limits scaled to a 10 s window, the same in the emulator and in the portal.
RATE_WINDOW = 10
RATES = {"Light": 50, "Medium": 40, "Heavy": 10, "Auth": 5}
NUMBER_RATE = 50

CLIENT_ID, CLIENT_SECRET = "mmsportal-chaos", "chaos-run-secret"
CALLBACK = "http://127.0.0.1:8000/ringcentral/callback/"
MARKER = re.compile(r"\[chaos #(\d+)\]")
TASK_RAISED = re.compile(r"Task messaging\.tasks\.(\w+)\[[^\]]+\] raised unexpected: ([\w.:]+)")
SEND_PATHS = ("/sms", "/mms")

# Recipients whose carrier refuses the message (final statuses other than delivered).
LANDLINE = "+16505550197"  # DeliveryFailed
OPTED_OUT = "+16505550198"  # SendingFailed
ORDINARY = [f"+1650555{n:04d}" for n in range(1000, 1600)]

FAULT_KINDS = ("http_503", "http_500", "stall", "drop_before", "drop_after", "rate_limit")
WEBHOOK_FAULTS = ("webhook_drop", "webhook_repeat")
INBOUND_MARKER = re.compile(r"\[inbound #(\d+)\]")
CONTACTS = [f"+1650556{n:04d}" for n in range(2000, 2400)]
STORE_FAULT = "store_503"
FINAL = ("delivered", "delivery_failed", "sending_failed", "no_receipt", "failed", "canceled")
ACCEPTED = ("sent", "delivered", "delivery_failed", "sending_failed", "no_receipt")

TEXTS = (
    "Reminder: your appointment is tomorrow at {h}:{m:02d}. Reply C to confirm.",
    "Your order #{n} is ready for pickup at the front desk.",
    "Hi! The clinic is closed on Monday; we moved your visit to Tuesday {h}:{m:02d}.",
    "Thanks for stopping by. Here is the form we talked about.",
    "Café opening hours this week: 8–18 h. Bring a friend ☕",
    "Line one\nLine two\nPlease call us back at your convenience.",
)


def fault_kind(entry) -> str:
    """The timetable's name for the fault a journal entry met."""
    if entry.fault != "status":
        return entry.fault
    if "/message-store" in entry.path:
        return STORE_FAULT
    return f"http_{entry.status}"


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- The run ------------------------------------------------------------------------------------


@dataclass
class Tally:
    injected: Counter = field(default_factory=Counter)
    kills: Counter = field(default_factory=Counter)
    unexpected_exits: Counter = field(default_factory=Counter)
    redis_restarts: int = 0
    redis_down_seconds: float = 0.0
    pg_terminations: int = 0
    pg_backends: int = 0
    chaos_errors: list[str] = field(default_factory=list)
    submit_retries: int = 0
    cancels: Counter = field(default_factory=Counter)
    not_created: list[int] = field(default_factory=list)
    # Messages compose refused because a recipient had opted out (after RingCentral failed an
    # earlier one to them with SMS-RC-413): never created, and rightly so.
    refused_opted_out: list[int] = field(default_factory=list)


@dataclass
class Spec:
    index: int
    kind: str  # sms, mms, group
    member: object
    sender: object
    to: list[str]
    text: str
    paths: list[str]

    @property
    def marker(self) -> str:
        return f"[chaos #{self.index}]"


class Run:
    """One chaos run from setup to teardown (`execute`); see the module docstring."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        # Messages and chaos draw from separate generators, so one seed gives the same messages
        # and the same timetable whatever the threads' interleaving.
        self.rng = random.Random(args.seed)
        self.chaos_rng = random.Random(args.seed + 1)
        self.tmp = Path(tempfile.mkdtemp(prefix="mmsportal-chaos-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.tally = Tally()
        self.journal: dict[int, object] = {}
        self.journal_lock = threading.Lock()
        self.services: list[Service] = []
        self.workers: list[Service] = []
        self.created: dict[int, list[int]] = {}
        self.kinds = Counter()
        self.emu = None
        self.stop_chaos = threading.Event()
        self.figures: dict[str, object] = {}
        self.web_port = free_port()
        self.inbound_sent: dict[int, int] = {}  # marker -> RingCentral id

    # -- setup ----------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        rates = {g: {"limit": n, "window": RATE_WINDOW} for g, n in RATES.items()}
        rates["SenderNumber"] = {"limit": NUMBER_RATE, "window": RATE_WINDOW}
        return {
            "DJANGO_SETTINGS_MODULE": "tests.chaos.settings",
            "DEBUG": "False",
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "ALLOWED_HOSTS": "127.0.0.1",
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
            "CELERY_BROKER_URL": REDIS_URL,
            "CHAOS_QUEUE": QUEUE,
            "CHAOS_BEAT_SECONDS": "3",
            "DATA_DIR": str(self.tmp / "data"),
            "MEDIA_ROOT": str(self.tmp / "media"),
            "RINGCENTRAL_SERVER_URL": self.emu.base_url,
            "RINGCENTRAL_CLIENT_ID": CLIENT_ID,
            "RINGCENTRAL_CLIENT_SECRET": CLIENT_SECRET,
            "RINGCENTRAL_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "RINGCENTRAL_READ_TIMEOUT": str(READ_TIMEOUT),
            "RINGCENTRAL_RATE_LIMITS": json.dumps(rates),
            "OUTBOX_SENDING_LEASE": str(LEASE),
            "OUTBOX_RECONCILE_GRACE": str(GRACE),
            "OUTBOX_RECONCILE_MARGIN": str(MARGIN),
            "OUTBOX_BACKOFF_SECONDS": BACKOFF,
            "TRACKING_MIN_READ_INTERVAL": "1",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            # The run's web server is reached over plain HTTP, as behind a TLS-ending proxy.
            "SECURE_SSL_REDIRECT": "false",
            "INBOX_SYNC_INTERVAL": "5",
            # With a working webhook, sync and tracking's own reads are the backstop for
            # deliveries RingCentral never made (the run drops some): minutes in production,
            # seconds here, as the run shortens every other interval.
            "INBOX_SYNC_INTERVAL_WITH_WEBHOOK": "10",
            "TRACKING_WEBHOOK_POLL_GAP": "10",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    def start_emulator(self) -> None:
        from messaging.ringcentral.emulator import Emulator, EmulatorConfig

        config = EmulatorConfig(
            consent_page=False,
            access_token_ttl=600,
            rate_limits_enabled=True,
            rate_limits=dict(RATES),
            rate_window=float(RATE_WINDOW),
            rate_penalty=float(RATE_WINDOW),
            sent_after=0.5,
            delivered_after=1.5,
        )
        self.emu = Emulator(config).start(host="127.0.0.1", port=0)
        self.emu.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[CALLBACK])
        self.emu.set_recipient_behaviour(LANDLINE, "delivery_failed", error_code="SMS-CAR-411")
        self.emu.set_recipient_behaviour(OPTED_OUT, "sending_failed", error_code="SMS-RC-413")

    def setup(self) -> None:
        if not redis_ok():
            raise RuntimeError("Redis does not answer on 127.0.0.1:6379")
        self.start_emulator()
        env = self.environment()
        os.environ.update(env)
        (self.tmp / "data").mkdir()
        (self.tmp / "media").mkdir()
        create_database(DB_NAME)
        redis_flush(REDIS_DB)

        import django

        django.setup()
        # This process reports on stdout; what the portal logs here (a failed hand-off to the
        # broker while Redis is down, for one) goes to a file beside the workers' logs.
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        to_file = logging.FileHandler(self.logs / "driver.log")
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(to_file)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        self.seed()
        self.make_files()

        celery = ["celery", "-A", "mmsportal"]
        worker_args = [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(self.args.concurrency),
            "--queues",
            QUEUE,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            "chaos-{n}@%h",
        ]
        child_env = {**os.environ, **env}
        # RingCentral's webhooks arrive here: subscriptions are made by the workers once they
        # start (the links were made above), and their handshake needs the server up.
        web = Service(
            "web",
            ["django", "runserver", f"127.0.0.1:{self.web_port}", "--noreload"],
            child_env,
            self.logs,
        )
        web.start()
        web.wait_ready("Quit the server")
        beat = Service(
            "beat",
            [*celery, "beat", "--loglevel", "INFO", "--schedule", str(self.tmp / "data" / "beat")],
            child_env,
            self.logs,
        )
        self.workers = [
            Service(f"worker{i + 1}", worker_args, child_env, self.logs)
            for i in range(self.args.workers)
        ]
        self.services = [web, beat, *self.workers]
        for service in (beat, *self.workers):
            service.start()
        for worker in self.workers:
            worker.wait_ready(" ready.")
        beat.wait_ready("beat: Starting")

    def seed(self) -> None:
        """One team of three members, each linked to their own RingCentral user and number."""
        from django.contrib.auth import get_user_model

        from messaging.links import connections
        from messaging.models import Membership, Role
        from messaging.ringcentral import oauth
        from messaging.teams import actions as teams

        people = [
            ("Olivia Owner", "olivia@frontdesk.example", Role.OWNER),
            ("Sam Sender", "sam@frontdesk.example", Role.SENDER),
            ("Ravi Reception", "ravi@frontdesk.example", Role.SENDER),
        ]
        users = [
            get_user_model().objects.create_user(
                username=email.split("@")[0], email=email, password=None
            )
            for _, email, _ in people
        ]
        team = teams.create_team(users[0], "Front desk")
        self.team = team
        self.senders = []
        for k, ((name, email, role), user) in enumerate(zip(people, users, strict=True)):
            if role != Role.OWNER:
                Membership.objects.create(team=team, user=user, role=role)
            phone = f"+1650555{120 + k:04d}"
            extension = self.emu.add_extension(
                name=name,
                email=email,
                numbers=[{"phone_number": phone, "features": ["SmsSender", "MmsSender"]}],
            )
            verifier, challenge = oauth.pkce_pair()
            code = self.emu.authorize_code(
                CLIENT_ID, CALLBACK, extension.id, code_challenge=challenge
            )
            tokens = oauth.exchange_code(code, CALLBACK, verifier)
            connection, _ = connections.link(team, user, tokens)
            connections.sync_numbers(connection)
            member = Membership.objects.select_related("user", "team").get(team=team, user=user)
            self.senders.append((member, connection.numbers.get(phone_number=phone)))

    def make_files(self) -> None:
        from tests import media_samples

        folder = self.tmp / "files"
        folder.mkdir()
        files = {f"photo-{k}.jpg": media_samples.photo(800, 600, seed=k) for k in range(4)}
        files["chart.png"] = media_samples.png(320, 240)
        files["form.pdf"] = media_samples.pdf(40_000)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        self.files = sorted(str(folder / name) for name in files)

    # -- messages -------------------------------------------------------------------------------

    def spec(self, index: int) -> Spec:
        rng = self.rng
        member, sender = rng.choice(self.senders)
        roll = rng.random()
        kind = "sms" if roll < 0.55 else "mms" if roll < 0.8 else "group"
        if kind == "group":
            to = rng.sample(ORDINARY, rng.randint(2, 5))
            if rng.random() < 0.1:
                to[-1] = rng.choice((LANDLINE, OPTED_OUT))
        else:
            to = [
                rng.choice((LANDLINE, OPTED_OUT)) if rng.random() < 0.04 else rng.choice(ORDINARY)
            ]
        with_files = kind == "mms" or (kind == "group" and rng.random() < 0.3)
        paths = rng.sample(self.files, rng.randint(1, 3)) if with_files else []
        template = rng.choice(TEXTS)
        body = template.format(h=rng.randint(8, 17), m=rng.choice((0, 15, 30, 45)), n=index)
        if rng.random() < 0.05:
            body += " " + " ".join(
                rng.choice(("please", "note", "today", "thanks")) for _ in range(60)
            )
        return Spec(index, kind, member, sender, to, f"[chaos #{index}] {body}", paths)

    def submit(self, spec: Spec) -> list[int] | None:
        """Create the message as the compose page would; after a database error, look for it
        first (the commit may have happened) and only then try again, as a person would."""
        from django.db import Error as DatabaseError
        from django.db import connection

        from messaging.compose.submission import Mode, send
        from messaging.models import OutboundMessage

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                created = send(
                    spec.member,
                    sender=spec.sender,
                    to="\n".join(spec.to),
                    text=spec.text,
                    paths=spec.paths,
                    mode=Mode.GROUP if spec.kind == "group" else Mode.SEPARATE,
                )
                return [m.pk for m in created]
            except DatabaseError:
                self.tally.submit_retries += 1
                connection.close()
                time.sleep(0.3)
                try:
                    found = list(
                        OutboundMessage.objects.filter(
                            team=self.team, text__startswith=spec.marker
                        ).values_list("pk", flat=True)
                    )
                except DatabaseError:
                    connection.close()
                    continue
                if found:
                    return found
        return None

    def cancel(self, pks: list[int]) -> None:
        """The Cancel button, racing the workers' claim: canceled only if no worker has the
        message yet (outbox.cancel), else it goes on; either way RingCentral must agree."""
        from django.db import Error as DatabaseError
        from django.db import connection

        from messaging.models import OutboundMessage
        from messaging.outbox import states as outbox

        for pk in pks:
            try:
                won = outbox.cancel(OutboundMessage.objects.get(pk=pk))
            except DatabaseError:
                connection.close()
                self.tally.cancels["not tried (database cut)"] += 1
                continue
            self.tally.cancels["canceled" if won else "too late"] += 1

    def create_messages(self, started: float) -> None:
        from messaging.compose.submission import ComposeInvalid

        count = self.args.messages
        spacing = 0.8 * self.args.seconds / count
        cancels: list[tuple[float, list[int]]] = []
        for index in range(1, count + 1):
            due = started + (index - 1) * spacing
            while cancels and cancels[0][0] <= time.monotonic():
                self.cancel(cancels.pop(0)[1])
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            if time.monotonic() - started > 3 * self.args.seconds:
                self.tally.not_created.extend(range(index, count + 1))
                log(f"creation too slow; {count - index + 1} messages not created")
                return
            spec = self.spec(index)
            try:
                pks = self.submit(spec)
            except ComposeInvalid as refused:
                to = refused.errors.get("to", [])
                if set(refused.errors) != {"to"} or not all("opted out" in e for e in to):
                    raise
                self.tally.refused_opted_out.append(index)
                continue
            if pks is None:
                self.tally.not_created.append(index)
                continue
            self.created[index] = pks
            self.kinds[spec.kind] += 1
            if self.rng.random() < 0.04:
                # Mostly at once (a race with the hand-off to a worker), else a moment later.
                delay = 0.0 if self.rng.random() < 0.6 else self.rng.uniform(0, 1.5)
                cancels.append((time.monotonic() + delay, pks))
                cancels.sort(key=lambda item: item[0])
            if index % max(1, count // 10) == 0:
                log(f"created {index}/{count}")
        for moment, pks in cancels:
            time.sleep(max(0.0, moment - time.monotonic()))
            self.cancel(pks)

    def receive_texts(self, started: float) -> None:
        """Contacts text the team's numbers through the chaos (some photos, some groups)."""
        count = self.args.inbound
        if not count:
            return
        rng = random.Random(self.args.seed + 2)
        ours = [sender.phone_number for _, sender in self.senders]
        photo = (self.tmp / "files").glob("*.png")
        picture = next(iter(sorted(photo)), None)
        spacing = 0.8 * self.args.seconds / count
        for index in range(1, count + 1):
            if (wait := started + (index - 1) * spacing - time.monotonic()) > 0:
                time.sleep(wait)
            contact, to = rng.choice(CONTACTS), rng.choice(ours)
            also = [rng.choice([c for c in CONTACTS if c != contact])] if rng.random() < 0.1 else []
            files = []
            if picture is not None and rng.random() < 0.15:
                files = [("photo.png", "image/png", picture.read_bytes())]
            text = f"[inbound #{index}] " + rng.choice(
                ("Is my order ready?", "Running 10 min late", "Thanks!", "Can you call me back?")
            )
            try:
                stored = self.emu.inbound(contact, to, text, attachments=files, also_to=also)
            except Exception as exc:
                self.tally.chaos_errors.append(f"inbound #{index}: {exc!r}")
                continue
            self.inbound_sent[index] = stored.id

    # -- chaos ----------------------------------------------------------------------------------

    def timetable(self) -> list[tuple[float, str]]:
        """A seeded plan: kills every few seconds, connection cuts, Redis restarts, and a number
        of each fault at random moments."""
        rng, seconds = self.chaos_rng, self.args.seconds
        events: list[tuple[float, str]] = []
        t = 3.0
        while t < seconds - 3:
            events.append((t, "kill_worker" if rng.random() < 0.7 else "kill_child"))
            t += rng.uniform(4, 9)
        t = 5.0
        while t < seconds - 3:
            events.append((t, "pg_terminate"))
            t += rng.uniform(8, 16)
        restarts = max(1, seconds // 150)
        for k in range(restarts):
            events.append(((k + 0.5) * seconds / restarts, "redis_restart"))
        per_kind = self.args.faults_per_kind or max(3, seconds // 20)
        for kind in (*FAULT_KINDS, STORE_FAULT, *WEBHOOK_FAULTS):
            for _ in range(per_kind):
                events.append((rng.uniform(2, max(3, seconds - 4)), kind))
        return sorted(events)

    def fault(self, kind: str):
        from messaging.ringcentral.emulator import Fault

        rng = self.chaos_rng
        send = {"path_contains": "/sms", "method": "POST"}
        if kind == "http_503":
            return Fault("status", status=503, count=rng.randint(2, 5), **send)
        if kind == "http_500":
            return Fault("status", status=500, count=rng.randint(2, 4), **send)
        if kind == "stall":
            # Mostly well past the read timeout; sometimes right at it, where the emulator may
            # store the message just as the client gives up on the answer.
            seconds = READ_TIMEOUT + (1.5 if rng.random() < 0.7 else rng.uniform(-0.2, 0.2))
            return Fault("stall", seconds=seconds, count=rng.randint(1, 2), **send)
        if kind == "drop_before":
            return Fault("drop_before", count=rng.randint(1, 2), **send)
        if kind == "drop_after":
            return Fault("drop_after", count=rng.randint(1, 2), **send)
        if kind == "rate_limit":
            return Fault("rate_limit", retry_after=rng.randint(1, 3), **send)
        return Fault("status", status=503, count=rng.randint(1, 3), path_contains="/message-store")

    def act(self, action: str) -> None:
        if action in WEBHOOK_FAULTS:
            count = self.chaos_rng.randint(1, 4)
            if action == "webhook_drop":
                self.emu.subscriptions.drop_next(count)
            else:
                self.emu.subscriptions.repeat_next(count)
            self.tally.injected[action] += count
        elif action in (*FAULT_KINDS, STORE_FAULT):
            self.emu.inject(self.fault(action))
            self.tally.injected[action] += 1
        elif action == "kill_worker":
            worker = self.chaos_rng.choice(self.workers)
            worker.kill()
            self.tally.kills["worker"] += 1
            worker.start()
        elif action == "kill_child":
            booted = [w for w in self.workers if time.monotonic() - w.started_at > 5]
            if booted and self.chaos_rng.choice(booted).kill_child(self.chaos_rng):
                self.tally.kills["pool child"] += 1
        elif action == "pg_terminate":
            self.tally.pg_backends += terminate_backends(DB_NAME)
            self.tally.pg_terminations += 1
        elif action == "redis_restart":
            down = time.monotonic()
            try:
                subprocess.run([*REDIS_CLI, "shutdown", "nosave"], timeout=10, capture_output=True)
                self.stop_chaos.wait(self.chaos_rng.uniform(2, 4))
            finally:
                redis_start()
            self.tally.redis_restarts += 1
            self.tally.redis_down_seconds += time.monotonic() - down

    def supervise(self) -> None:
        """A process that died without being killed here is counted and started again."""
        for service in self.services:
            if not service.alive:
                self.tally.unexpected_exits[service.name] += 1
                log(f"{service.name} exited by itself (code {service.process.returncode})")
                service.start()

    def collect_journal(self) -> None:
        # The emulator keeps its latest 10,000 requests; gathering them as the run goes keeps
        # every one of a long run.
        with self.journal_lock:
            for entry in self.emu.journal:
                self.journal[entry.seq] = entry

    def chaos(self, events: list[tuple[float, str]], started: float) -> None:
        pending = list(events)
        last_collect = 0.0
        while not self.stop_chaos.is_set():
            elapsed = time.monotonic() - started
            while pending and pending[0][0] <= elapsed and not self.stop_chaos.is_set():
                _, action = pending.pop(0)
                try:
                    self.act(action)
                except Exception as exc:
                    self.tally.chaos_errors.append(f"{action}: {exc!r}")
                    log(f"chaos action {action} failed: {exc!r}")
            self.supervise()
            if time.monotonic() - last_collect > 2:
                self.collect_journal()
                last_collect = time.monotonic()
            self.stop_chaos.wait(0.25)

    # -- settle and check -----------------------------------------------------------------------

    def status_counts(self) -> Counter:
        from django.db import Error as DatabaseError
        from django.db import connection
        from django.db.models import Count

        from messaging.models import OutboundMessage

        for _ in range(5):
            try:
                rows = (
                    OutboundMessage.objects.filter(team=self.team)
                    .values("status")
                    .annotate(n=Count("id"))
                )
                return Counter({row["status"]: row["n"] for row in rows})
            except DatabaseError:
                connection.close()
                time.sleep(0.5)
        raise RuntimeError("the database does not answer")

    def settle(self) -> float | None:
        """Seconds until every message was final, or None when `--settle` ran out."""
        started = time.monotonic()
        last_note = 0.0
        while time.monotonic() - started < self.args.settle:
            counts = self.status_counts()
            open_ = {s: n for s, n in counts.items() if s not in FINAL}
            missing = self.inbound_missing()
            if missing:
                open_["received, not yet in the inbox"] = missing
            if not open_:
                return time.monotonic() - started
            if time.monotonic() - last_note > 10:
                log(f"settling: not final yet {dict(open_)}")
                last_note = time.monotonic()
            self.supervise()
            self.collect_journal()
            time.sleep(1)
        return None

    def inbound_missing(self) -> int:
        from django.db import Error as DatabaseError
        from django.db import connection

        from messaging.models import ConversationMessage

        wanted = {str(i) for i in self.inbound_sent.values()}
        try:
            have = set(
                ConversationMessage.objects.filter(rc_message_id__in=wanted).values_list(
                    "rc_message_id", flat=True
                )
            )
        except DatabaseError:
            connection.close()
            return len(wanted)
        return len(wanted - have)

    def check_inbound(self, problems: dict[str, list[str]]) -> dict:
        """Every text RingCentral received is in the inbox once: by its id and by its marker."""
        from django.db.models import Count

        from messaging.models import ConversationMessage, FileState, InboxFile

        received = [m for m in self.emu.messages.all() if m.direction == "Inbound"]
        rows = ConversationMessage.objects.filter(direction="inbound", conversation__team=self.team)
        by_id = Counter(rows.values_list("rc_message_id", flat=True))
        by_marker = Counter()
        for text in rows.values_list("text", flat=True):
            found = INBOUND_MARKER.search(text)
            if found:
                by_marker[int(found.group(1))] += 1
        for message in received:
            marker = INBOUND_MARKER.search(message.text)
            label = f"inbound #{marker.group(1) if marker else '?'} (RingCentral {message.id})"
            if by_id[str(message.id)] == 0:
                problems["lost"].append(f"{label}: not in the inbox")
            elif by_id[str(message.id)] > 1 or (marker and by_marker[int(marker.group(1))] > 1):
                problems["duplicates"].append(f"{label}: stored {by_id[str(message.id)]} times")
        sources = dict(rows.values_list("source").annotate(n=Count("id")))
        files = dict(
            InboxFile.objects.filter(message__conversation__team=self.team)
            .values_list("state")
            .annotate(n=Count("id"))
        )
        return {
            "received": len(received),
            "stored": sum(by_id.values()),
            "sources": sources,
            "files": {FileState(k).label: v for k, v in files.items()},
            "instant_deliveries": sum(
                1 for d in self.emu.deliveries if "/instant" in str(d.payload.get("event"))
            ),
        }

    def check(self, settle_seconds: float | None) -> bool:
        from django.db.models import Count

        from messaging.models import MessageEvent, OutboundMessage, SendAttempt

        self.collect_journal()
        stored_by_marker: dict[int, list] = defaultdict(list)
        foreign = []
        for stored in self.emu.messages.all():
            if stored.direction != "Outbound":
                continue  # received texts: check_inbound
            found = MARKER.search(stored.text)
            if found:
                stored_by_marker[int(found.group(1))].append(stored)
            else:
                foreign.append(stored.id)

        messages = list(
            OutboundMessage.objects.filter(team=self.team).prefetch_related(
                "recipients", "attachments"
            )
        )
        by_marker: dict[int, list] = defaultdict(list)
        for message in messages:
            found = MARKER.search(message.text)
            by_marker[int(found.group(1)) if found else -1].append(message)

        problems: dict[str, list[str]] = defaultdict(list)
        for index, stored in sorted(stored_by_marker.items()):
            if len(stored) > 1:
                ids = ", ".join(str(s.id) for s in stored)
                problems["duplicates"].append(f"#{index} stored {len(stored)} times ({ids})")
            if index not in self.created:
                problems["phantoms"].append(f"#{index} stored but never created")
        for stored_id in foreign:
            problems["phantoms"].append(f"RingCentral message {stored_id} has no marker")
        for index in self.tally.not_created:
            problems["not created"].append(f"#{index}")
        for index in self.created:
            rows = by_marker.get(index, [])
            if len(rows) != 1:
                problems["lost"].append(f"#{index}: {len(rows)} rows in the database")
        if -1 in by_marker:
            problems["lost"].append(f"{len(by_marker[-1])} rows without a marker")

        for message in messages:
            index = int(MARKER.search(message.text).group(1))
            stored = stored_by_marker.get(index, [])
            label = f"#{index} ({message.status})"
            if message.status in ACCEPTED:
                if not stored:
                    problems["lost"].append(f"{label}: accepted, but RingCentral has no record")
                    continue
                if str(stored[0].id) != message.rc_message_id and len(stored) == 1:
                    problems["mismatched"].append(
                        f"{label}: rc_message_id {message.rc_message_id}, stored {stored[0].id}"
                    )
                want_to = sorted(r.phone_number for r in message.recipients.all())
                want_files = sorted(a.sha256 for a in message.attachments.all())
                got_files = sorted(a.sha256 for a in stored[0].attachments)
                if sorted(stored[0].to_numbers) != want_to or got_files != want_files:
                    problems["mismatched"].append(f"{label}: recipients or files differ")
            elif stored:
                problems["ghost sends"].append(f"{label}: RingCentral has it ({stored[0].id})")
            if message.status not in FINAL:
                problems["not final"].append(f"{label}: {message.error_reason[:120]}")
            elif message.status == "failed" and not message.error_reason:
                problems["failed without a reason"].append(label)

        sends = [
            e for e in self.journal.values() if e.method == "POST" and e.path.endswith(SEND_PATHS)
        ]
        outcomes = Counter(e.outcome for e in sends)
        statuses = Counter(e.status for e in sends if e.outcome == "rejected")
        attempts = Counter(
            SendAttempt.objects.filter(message__team=self.team).values_list("outcome", flat=True)
        )
        attempted = (
            SendAttempt.objects.filter(message__team=self.team).values("message").distinct().count()
        )
        most = (
            OutboundMessage.objects.filter(team=self.team)
            .values("attempts")
            .annotate(n=Count("id"))
            .order_by("-attempts")
            .first()
        )
        events = MessageEvent.objects.filter(message__team=self.team, kind="reconciled")
        found_again = events.filter(text__startswith="Found").count()
        requeued = events.count() - found_again
        hit = Counter(fault_kind(e) for e in self.journal.values() if e.fault)
        real_429 = sum(
            1 for e in self.journal.values() if e.outcome == "rate_limited" and not e.fault
        )
        failed_reasons = Counter(
            shorten(m.error_reason, 160) for m in messages if m.status == "failed"
        ).most_common(4)

        inbound = self.check_inbound(problems)
        self.figures = {
            "inbound": inbound,
            "messages": len(self.created),
            "kinds": dict(self.kinds),
            "recipients": sum(len(m.recipients.all()) for m in messages),
            "files": sum(len(m.attachments.all()) for m in messages),
            "send_posts": len(sends),
            "send_outcomes": dict(outcomes),
            "rejected_statuses": dict(statuses),
            "stored": sum(len(v) for v in stored_by_marker.values()),
            "attempts": dict(attempts),
            "retries": sum(attempts.values()) - attempted,
            "max_attempts": most["attempts"] if most else 0,
            "reconciled_found": found_again,
            "reconciled_requeued": requeued,
            "faults_injected": dict(self.tally.injected),
            "faults_hit": dict(hit),
            "real_429": real_429,
            "kills": dict(self.tally.kills),
            "unexpected_exits": dict(self.tally.unexpected_exits),
            "restarts": {s.name: s.starts - 1 for s in self.services},
            "redis_restarts": self.tally.redis_restarts,
            "redis_down_seconds": round(self.tally.redis_down_seconds, 1),
            "pg_terminations": self.tally.pg_terminations,
            "pg_backends": self.tally.pg_backends,
            "submit_retries": self.tally.submit_retries,
            "cancels": dict(self.tally.cancels),
            "tasks_raised": dict(self.tasks_raised()),
            "settle_seconds": None if settle_seconds is None else round(settle_seconds, 1),
            "to_accepted": spread(
                (m.sent_at - m.created_at).total_seconds() for m in messages if m.sent_at
            ),
            "last_final_after": last_final_after(messages),
            "final_statuses": dict(self.status_counts()),
            "failed_reasons": failed_reasons,
            "problems": {k: v for k, v in problems.items() if v},
            "chaos_errors": list(self.tally.chaos_errors),
            "journal_entries": len(self.journal),
        }
        return not self.figures["problems"]

    def tasks_raised(self) -> Counter:
        """Task runs that ended in an exception, by task and exception, from the workers' logs
        (a database or Redis cut in the middle of a task shows here)."""
        found = Counter()
        for worker in self.workers:
            text = worker.log_path.read_text(errors="replace")
            for task, error in TASK_RAISED.findall(text):
                found[f"{task} {error.rstrip(':')}"] += 1
        return found

    # -- the whole run --------------------------------------------------------------------------

    def execute(self) -> int:
        began = time.monotonic()
        try:
            try:
                self.setup()
            except Exception as exc:
                log(f"setup failed: {exc}")
                return 2
            log(
                f"world ready in {time.monotonic() - began:.0f} s: emulator {self.emu.base_url}, "
                f"{len(self.workers)} workers × {self.args.concurrency}, beat; "
                f"seed {self.args.seed}"
            )
            events = self.timetable()
            started = time.monotonic()
            chaos = threading.Thread(target=self.chaos, args=(events, started), daemon=True)
            chaos.start()
            texts = threading.Thread(target=self.receive_texts, args=(started,), daemon=True)
            texts.start()
            try:
                self.create_messages(started)
                texts.join(timeout=3 * self.args.seconds)
                while time.monotonic() - started < self.args.seconds:
                    time.sleep(0.5)
            finally:
                self.stop_chaos.set()
                chaos.join(timeout=60)
                self.emu.faults.clear()
                redis_start()
            chaos_seconds = time.monotonic() - started
            log(f"chaos over after {chaos_seconds:.0f} s; settling (at most {self.args.settle} s)")
            settle_seconds = self.settle()
            passed = self.check(settle_seconds)
            self.figures["chaos_seconds"] = round(chaos_seconds, 1)
            self.figures["total_seconds"] = round(time.monotonic() - began, 1)
            text = self.render(passed)
            print(text, flush=True)
            if self.args.report:
                from tests.chaos.report import replace_section

                replace_section(Path(self.args.report), "Chaos", text)
                log(f"figures written to {self.args.report}")
            if not passed:
                log(f"logs kept in {self.logs}")
            return 0 if passed else 1
        finally:
            self.teardown()

    def teardown(self) -> None:
        for service in self.services:
            try:
                service.stop()
            except Exception as exc:
                log(f"stopping {service.name}: {exc!r}")
        try:
            redis_start()
            redis_flush(REDIS_DB)
        except Exception as exc:
            log(f"Redis: {exc!r}")
        if self.emu is not None:
            self.emu.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception as exc:
            log(f"closing database connections: {exc!r}")
        if not self.args.keep:
            try:
                drop_database(DB_NAME)
            except Exception as exc:
                log(f"dropping {DB_NAME}: {exc!r}")
        failed = bool(self.figures.get("problems")) or not self.figures
        for path in (self.tmp / "files", self.tmp / "media", self.tmp / "data"):
            shutil.rmtree(path, ignore_errors=True)
        if not failed and not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- report ---------------------------------------------------------------------------------

    def render(self, passed: bool) -> str:
        from tests.chaos.report import machine, now_utc, server_versions

        f = self.figures
        kinds = f["kinds"]
        outcomes = f["send_outcomes"]

        def pairs(values: dict) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"

        faults = ", ".join(
            f"{kind} {f['faults_injected'].get(kind, 0)}"
            for kind in (*FAULT_KINDS, STORE_FAULT, *WEBHOOK_FAULTS)
        )
        hit = f["faults_hit"]
        settle = (
            f"{f['settle_seconds']} s"
            if f["settle_seconds"] is not None
            else f"not settled within {self.args.settle} s"
        )
        command = (
            f"python -m tests.chaos.chaos --messages {self.args.messages} "
            f"--inbound {self.args.inbound} --seconds {self.args.seconds} --seed {self.args.seed}"
        )
        rows = [
            (
                "Messages created",
                f"{f['messages']} (SMS {kinds.get('sms', 0)}, MMS "
                f"{kinds.get('mms', 0)}, group {kinds.get('group', 0)}); {f['recipients']} "
                f"recipients, {f['files']} files",
            ),
            (
                "Refused at compose: a recipient had opted out",
                f"{len(self.tally.refused_opted_out)}",
            ),
            (
                "POSTs to …/sms",
                f"{f['send_posts']}: {pairs(outcomes)} (rejected by HTTP status: "
                f"{pairs(f['rejected_statuses'])})",
            ),
            (
                "Stored by RingCentral",
                f"{f['stored']} (accepted {outcomes.get('accepted', 0)}"
                f" + stored then dropped {outcomes.get('dropped_after', 0)}); never reached it: "
                f"canceled {f['final_statuses'].get('canceled', 0)}, failed "
                f"{f['final_statuses'].get('failed', 0)}",
            ),
            ("Send attempts", f"{sum(f['attempts'].values())}: {pairs(f['attempts'])}"),
            ("Retries", f"{f['retries']} (most attempts for one message: {f['max_attempts']})"),
            (
                "Unknown outcomes reconciled",
                f"found at RingCentral {f['reconciled_found']}, "
                f"not found so queued again {f['reconciled_requeued']}",
            ),
            ("Faults injected", faults),
            ("Faults that met a request", pairs(hit)),
            ("429s from RingCentral's own limiter", str(f["real_429"])),
            ("Workers SIGKILLed", pairs(f["kills"])),
            ("Process exits not caused by the run", pairs(f["unexpected_exits"])),
            ("Redis restarts", f"{f['redis_restarts']} ({f['redis_down_seconds']} s down)"),
            (
                "PostgreSQL connection cuts",
                f"{f['pg_terminations']} ({f['pg_backends']} connections terminated)",
            ),
            ("Tasks that raised (logged by the workers)", pairs(f["tasks_raised"])),
            ("Compose retries after a cut", str(f["submit_retries"])),
            (
                "Cancel clicked soon after sending",
                f"{sum(f['cancels'].values())}: {pairs(f['cancels'])}",
            ),
            ("Created → accepted by RingCentral", f["to_accepted"]),
            (
                "Chaos / settle / whole run",
                f"{f['chaos_seconds']} s / {settle} / {f['total_seconds']} s (the last message "
                f"was final {f['last_final_after']} after the last one was created)",
            ),
            ("Final statuses", pairs(f["final_statuses"])),
            (
                "Texts received",
                f"{f['inbound']['received']} at RingCentral, {f['inbound']['stored']} in the "
                f"inbox (by {pairs(f['inbound']['sources'])}); instant webhook deliveries "
                f"{f['inbound']['instant_deliveries']} (lost on the way "
                f"{f['faults_injected'].get('webhook_drop', 0)}, sent twice "
                f"{f['faults_injected'].get('webhook_repeat', 0)}); their files: "
                f"{pairs(f['inbound']['files'])}",
            ),
        ]
        lines = [
            f"Run {now_utc()} on {machine()}; {server_versions(os.environ.get('DATABASE_URL'))}.",
            "",
            f"`{command}`: {len(self.workers)} worker processes (concurrency "
            f"{self.args.concurrency}) and beat, the emulator in the run's process; read "
            f"timeout {READ_TIMEOUT:g} s, lease {LEASE} s, reconcile grace {GRACE} s, backoff "
            f"{BACKOFF} s, rate-limit window {RATE_WINDOW} s.",
            "",
            "| Figure | Value |",
            "| --- | --- |",
            *(f"| {name} | {value} |" for name, value in rows),
            "",
        ]
        if f["failed_reasons"]:
            lines.append("Failed messages by reason:")
            lines += [f"- {n} × {reason}" for reason, n in f["failed_reasons"]]
            lines.append("")
        problems = f["problems"]
        checks = ("duplicates", "lost", "not final")
        verdict = ", ".join(f"{name} {len(problems.get(name, []))}" for name in checks)
        lines.append(f"**{'PASSED' if passed else 'FAILED'}**: {verdict}.")
        for name, items in problems.items():
            lines.append("")
            lines.append(f"{name} ({len(items)}):")
            lines += [f"- {item}" for item in items[:20]]
            if len(items) > 20:
                lines.append(f"- … and {len(items) - 20} more")
        if f["unexpected_exits"]:
            lines.append("")
            lines.append(
                "A process that exits by itself is started again, as a supervisor would (systemd "
                "`Restart=always`, a container's restart policy). Workers have been seen to exit "
                "with status 1 when Redis goes away, from inside Celery's Redis transport while "
                "it restores unacknowledged tasks on the lost connection, instead of "
                "reconnecting: in production they must run under such a supervisor."
            )
        if f["chaos_errors"]:
            lines.append("")
            lines.append("Chaos actions that failed: " + "; ".join(f["chaos_errors"][:5]))
        return "\n".join(lines)


def shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def spread(values) -> str:
    """Median, 95th percentile and largest of `values` (seconds), for the report."""
    ordered = sorted(values)
    if not ordered:
        return "none"

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return f"median {at(0.5):.1f} s, p95 {at(0.95):.1f} s, max {ordered[-1]:.1f} s"


def last_final_after(messages) -> str:
    finals = [m.final_at for m in messages if m.final_at]
    if not finals or not messages:
        return "–"
    return f"{(max(finals) - max(m.created_at for m in messages)).total_seconds():.1f} s"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument(
        "--inbound", type=int, default=None, help="texts received (default: --messages)"
    )
    parser.add_argument("--seconds", type=int, default=60, help="length of the chaos phase")
    parser.add_argument("--settle", type=int, default=180, help="longest wait to settle")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--faults-per-kind", type=int, default=0)
    parser.add_argument("--report", help="write the figures to this file's ## Chaos section")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    if args.inbound is None:
        args.inbound = args.messages
    if args.messages < 1 or args.seconds < 10:
        parser.error("need at least 1 message and 10 seconds")
    return args


def main(argv=None) -> int:
    return Run(parse_args(argv)).execute()


if __name__ == "__main__":
    sys.exit(main())
