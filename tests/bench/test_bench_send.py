"""Sending: CPU and memory per MMS, pipeline throughput, and use of RingCentral's rate limit.

Run with `make bench` (BENCH=1). (b) needs PostgreSQL and Redis (DATABASE_URL and a redis://
CELERY_BROKER_URL); (a) and (c) run on any configuration. Each benchmark compares the portal with
a baseline measured in the same run on the same machine and writes the ratio to
docs/benchmarks.md under "## Sending" (the other sections are left alone). Nothing here asserts
on time: the figures are recorded, and only correctness (every message sent once, no 429) is
checked.

The emulator runs in a child process, so its work (parsing multipart bodies, hashing parts,
keeping messages) never counts towards the portal's CPU time or memory.

(a) CPU time and peak memory of `RingCentralClient.send` for an MMS of 10 files as a worker
    holds it after the claim (read with `outbox.message_for_sending`), against the lower bound
    of writing the same body, built beforehand and held in memory, over `http.client` on one
    kept-alive connection. Over https, as RingCentral is served (the emulator with a
    certificate made for the run), and over plain http, as the emulator is used in demo mode.
    The two are measured in alternating rounds and the ratio is the median of the rounds', so
    a change in the machine's speed during the run falls on both. Memory is tracemalloc's
    (Python allocations) at three total sizes. The largest send is also measured against the
    lower bound plus reading the files from storage (`storage_floor`): what remains above that
    is what a better encoder could still gain.
(b) Messages per second through the whole pipeline (task, claim, token, POST, record) with two
    worker processes and the limiter off, against a no-op Celery task (`celery.accumulate`) on
    the same broker and workers, and against the floor: the least any pipeline of one task per
    message can do here (tests/bench/floor.py).
(c) With an emulator limit of LIMIT requests per WINDOW on the Medium group, two workers send
    4 × LIMIT messages, i.e. over three full windows: the time RingCentral's limit requires at
    the least, against the time taken. No 429 may occur. Once with the portal configured as the
    emulator reports, once with the emulator reporting 10 per 10 s while the portal keeps
    RingCentral's default 40 per 60 s.
(d) Peak memory of a send of stored files from local storage and from S3 (a moto server in a
    child process) at two sizes, against the storage's own `open`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from messaging.links import connections, tokens
from messaging.links.tokens import client_for
from messaging.models import Attachment, MessageStatus, OutboundMessage
from messaging.outbox import states as outbox
from messaging.ringcentral import http as rc_http
from messaging.ringcentral import oauth
from messaging.ringcentral.client import build_send_request
from messaging.ringcentral.paths import SEND as SEND_PATH
from messaging.sending.attempt import wire_message
from tests.bench.report import machine, replace_section
from tests.factories import make_message
from tests.test_send_workers import declare
from tests.worker import WorkerProcess, subprocess_env, wait_for

pytestmark = [
    pytest.mark.skipif(os.environ.get("BENCH") != "1", reason="benchmarks run with BENCH=1"),
    pytest.mark.django_db(transaction=True),
]

SECTION = "## Sending"
RESULTS: dict[str, dict] = {}

FROM = "+16505550140"
FILES = 10
MAX_TOTAL = 1_450_000
TOTALS = (145_000, 725_000, MAX_TOTAL)
ROUNDS = 15
PER_ROUND = 8
WARMUP = 5
PIPELINE_MESSAGES = 400
RATE_LIMIT = 10
RATE_WINDOW = 60.0

# The emulator, alone in a child process: prints its address and a token pair, then serves
# until its stdin is closed.
CHILD = r"""
import json, sys
from messaging.ringcentral.emulator import Emulator, EmulatorConfig, tls
spec = json.loads(sys.argv[1])
context = tls.self_signed(spec["tls_dir"]).server_context() if spec["tls_dir"] else None
emu = Emulator(EmulatorConfig(**spec["config"])).start(host="127.0.0.1", port=0, tls=context)
emu.register_app(spec["client_id"], spec["client_secret"], redirect_uris=["http://bench/cb"])
ext = emu.add_extension(name="Bench", numbers=[
    {"phone_number": spec["from"], "features": ["SmsSender", "MmsSender"]}])
print(json.dumps({"base_url": emu.base_url, "tokens": emu.issue_tokens(spec["client_id"], ext.id)}),
      flush=True)
sys.stdin.read()
emu.stop()
"""


class RemoteEmulator:
    def __init__(self, tls_dir=None, **config):
        spec = {
            "tls_dir": str(tls_dir) if tls_dir else None,
            "config": config,
            "client_id": settings.RINGCENTRAL_CLIENT_ID,
            "client_secret": settings.RINGCENTRAL_CLIENT_SECRET,
            "from": FROM,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(spec)],
            cwd=settings.BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        hello = json.loads(self.process.stdout.readline())
        self.ca = str(tls_dir / "emulator-cert.pem") if tls_dir else True
        self.base_url = hello["base_url"]
        self.tokens = hello["tokens"]

    def control(self, method: str, name: str, **kwargs):
        response = requests.request(
            method, f"{self.base_url}/_emulator/{name}", timeout=30, verify=self.ca, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def sends(self) -> list[dict]:
        entries = self.control("GET", "journal", params={"path_contains": "/sms"})["entries"]
        return [e for e in entries if e["method"] == "POST"]

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    return tmp_path / "media"


def start_emulator(settings, tls_dir=None, **config) -> RemoteEmulator:
    emu = RemoteEmulator(tls_dir, **config)
    settings.RINGCENTRAL_SERVER_URL = emu.base_url
    return emu


def link(emu, team, user):
    tokens = oauth.TokenSet.from_token(emu.tokens, received_at=timezone.now())
    linked, _ = connections.link(team, user, tokens)
    connections.sync_numbers(linked)
    return linked


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def databases() -> str:
    return f"{connection.vendor} database, broker {urlsplit(settings.CELERY_BROKER_URL).scheme}"


# --- (a) CPU and memory per MMS --------------------------------------------------------------


def mms(linked, user, total: int, seed: int):
    message = make_message(
        linked.numbers.get(phone_number=FROM), user, to=("+16505550199",), text=f"Bench {seed}"
    )
    size = total // FILES
    for position in range(FILES):
        data = hashlib.sha256(f"{seed}:{position}".encode()).digest() * (size // 32 + 1)
        data = data[:size]
        name = default_storage.save(f"bench/{uuid.uuid4().hex}", ContentFile(data))
        Attachment.objects.create(
            message=message,
            file=name,
            original_name=f"photo{position}.jpg",
            content_type="image/jpeg",
            size=size,
            sha256=hashlib.sha256(data).hexdigest(),
            position=position,
        )
    return message


def cpu_of(action, runs: int) -> float:
    """CPU seconds (user + system, this process) per call, over `runs` calls."""
    start = time.process_time()
    for _ in range(runs):
        action()
    return (time.process_time() - start) / runs


def paired(action, baseline) -> tuple[float, float, float]:
    """Mean CPU per call of `action` and `baseline`, and the median of their per-round ratio."""
    for _ in range(WARMUP):
        action()
        baseline()
    ours, theirs = [], []
    for _ in range(ROUNDS):
        ours.append(cpu_of(action, PER_ROUND))
        theirs.append(cpu_of(baseline, PER_ROUND))
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    return statistics.mean(ours), statistics.mean(theirs), ratio


def peak_of(action) -> int:
    action()  # imports and pools settle first
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def raw_connection(emu) -> http.client.HTTPConnection:
    """The lower bound's connection: http.client alone, TLS verified as the portal verifies it."""
    address = urlsplit(emu.base_url)
    if address.scheme == "https":
        context = ssl.create_default_context(cafile=emu.ca)
        return http.client.HTTPSConnection(
            address.hostname, address.port, timeout=30, context=context
        )
    return http.client.HTTPConnection(address.hostname, address.port, timeout=30)


def post_raw(raw: http.client.HTTPConnection, body, headers: dict) -> None:
    """One POST of a body already in memory over the bare connection, answer read to the end."""
    raw.request("POST", SEND_PATH, body=body, headers=headers)
    answer = raw.getresponse()
    assert answer.status == 200, answer.read()[:300]
    answer.read()


def storage_floor(emu, message, body: bytes, headers: dict):
    """The lower bound plus taking the files out of storage, and nothing else.

    The body is laid out once; each call reads every stored file (plain `open`, `readinto`)
    into its place in that body, then writes the body in one piece as the lower bound does.
    Over TLS every byte of the files has to pass through the process, so a send from storage
    does at least this much; the send's ratio to it is what a better encoder could still gain.
    """
    buffer = bytearray(body)
    view = memoryview(buffer)
    slots = []
    for attachment in message.attachments.all():
        path = attachment.file.path
        with open(path, "rb") as f:
            data = f.read()
        offset = body.find(data)
        assert offset > 0 and body.find(data, offset + 1) == -1
        slots.append((path, offset, len(data)))
    raw = raw_connection(emu)

    def write():
        for path, offset, size in slots:
            with open(path, "rb", buffering=0) as f:
                assert f.readinto(view[offset : offset + size]) == size
        post_raw(raw, buffer, headers)

    return write, raw


def breakdown(message_id: int, loaded, body: bytes, headers: dict) -> dict[str, float]:
    """Where a send's CPU goes, each step measured alone (ms per send)."""

    def stream():
        request = build_send_request(*wire_message(loaded))
        for _ in request.body.chunks():
            pass
        request.body.close()

    steps = {
        "reading the message for sending (claim's query: connection, recipients, files)": (
            lambda: outbox.message_for_sending(message_id)
        ),
        "token from the loaded connection (decryption)": (
            lambda: tokens.loaded_access_token(loaded.connection)
        ),
        "body built: files opened, sizes and limits checked, part headers": (
            lambda: build_send_request(*wire_message(loaded)).body.close()
        ),
        "the above, then every file read from storage": stream,
        "POST of the pre-built body on the kept-alive connection, answer read": (
            lambda: rc_http.post_message(SEND_PATH, headers, [body])
        ),
    }
    for step in steps.values():
        for _ in range(WARMUP):
            step()
    return {name: cpu_of(step, ROUNDS * PER_ROUND) * 1000 for name, step in steps.items()}


@pytest.mark.parametrize("transport", ["https", "http"])
def test_a_cpu_and_memory_per_mms(settings, media, team, alice, tmp_path, monkeypatch, transport):
    load_before = load()
    tls_dir = tmp_path / "tls" if transport == "https" else None
    emu = start_emulator(settings, tls_dir=tls_dir, rate_limits_enabled=False)
    if tls_dir:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca)
    try:
        linked = link(emu, team, alice)
        rows = []
        for total in TOTALS:
            message = outbox.message_for_sending(mms(linked, alice, total, seed=total).pk)
            client = client_for(message.connection, just_read=True)

            def send(message=message, client=client):
                client.send(*wire_message(message))

            prebuilt = build_send_request(*wire_message(message))
            body = prebuilt.body.read()
            prebuilt.body.close()
            headers = {**prebuilt.headers, "Authorization": f"Bearer {linked.access_token}"}
            raw = raw_connection(emu)

            def write_prebuilt(body=body, headers=headers, raw=raw):
                post_raw(raw, body, headers)

            if total == MAX_TOTAL:
                RESULTS.setdefault("a_parts", {})[transport] = breakdown(
                    message.pk, message, body, headers
                )
            cpu_send, cpu_raw, ratio = paired(send, write_prebuilt)
            if total == MAX_TOTAL:
                read_and_write, floor_connection = storage_floor(emu, message, body, headers)
                cpu_again, cpu_floor, floor_ratio = paired(send, read_and_write)
                floor_connection.close()
                RESULTS.setdefault("a_floor", {})[transport] = {
                    "cpu_send_ms": cpu_again * 1000,
                    "cpu_floor_ms": cpu_floor * 1000,
                    "ratio": floor_ratio,
                }
            peak_send = peak_of(send)
            peak_raw = peak_of(write_prebuilt) + len(body)  # the body is held throughout
            raw.close()
            emu.control("POST", "reset")
            rows.append(
                {
                    "total": total,
                    "body": len(body),
                    "cpu_send_ms": cpu_send * 1000,
                    "cpu_raw_ms": cpu_raw * 1000,
                    "ratio": ratio,
                    "peak_send_kb": peak_send / 1000,
                    "peak_raw_kb": peak_raw / 1000,
                }
            )
        # Every send was a real, complete MMS: check the last one's bytes.
        client.send(*wire_message(message))
        (last,) = emu.sends()
        assert last["status"] == 200 and len(last["parts"]) == FILES + 1
        stored = {a.sha256 for a in message.attachments.all()}
        assert {part["sha256"] for part in last["parts"][1:]} == stored
    finally:
        emu.stop()
    RESULTS.setdefault("a", {})[transport] = {"rows": rows, "load": f"{load_before} / {load()}"}
    write_report()


# --- (b) pipeline throughput ------------------------------------------------------------------


def production_env() -> dict:
    """Workers as deployed: DEBUG off (Django then keeps no log of every query), with the secrets
    this process uses so that they read the same encrypted tokens."""
    return {
        "DEBUG": "False",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "TOKEN_ENCRYPTION_KEYS": ",".join(settings.TOKEN_ENCRYPTION_KEYS),
        "ALLOWED_HOSTS": "127.0.0.1",
    }


def worker_pool(count: int, env: dict) -> tuple[str, list[WorkerProcess]]:
    env = {**production_env(), **env}
    queue = f"bench-{uuid.uuid4().hex[:12]}"
    declare(queue)
    workers = [
        WorkerProcess(queue, 1, subprocess_env(**env), include=("tests.bench.floor",))
        for _ in range(count)
    ]
    for worker in workers:
        worker.wait_ready()
    return queue, workers


def stop_pool(workers) -> None:
    import signal

    for worker in workers:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGTERM)
    for worker in workers:
        worker.stop()


TASK_DONE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*Task (\S+)\[.*\] succeeded")


def done_times(workers, name: str, since: list[int]) -> list[float]:
    """When each task `name` finished, from the workers' log lines (epoch seconds)."""
    times = []
    for worker, start in zip(workers, since, strict=True):
        for line in worker.output[start:]:
            found = TASK_DONE.search(line)
            if found and found.group(3) == name:
                stamp = time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S"))
                times.append(stamp + int(found.group(2)) / 1000)
    return times


def sms_batch(linked, user, count: int, label: str) -> list[int]:
    number = linked.numbers.get(phone_number=FROM)
    return [
        make_message(number, user, to=(f"+1650556{i:04d}",), text=f"{label} {i}").pk
        for i in range(count)
    ]


def enqueue(ids, queue: str) -> None:
    from mmsportal.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        with transaction.atomic():
            outbox.enqueue(ids)
    finally:
        app.conf.task_default_queue = previous


def all_sent(ids) -> bool:
    return (
        not OutboundMessage.objects.filter(pk__in=ids).exclude(status=MessageStatus.SENT).exists()
    )


def tree_cpu(pids) -> float:
    """CPU seconds used so far by these processes and their children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, used = set(pids), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid in parents or ppid in parents:
            used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return sum(used.values())


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


class Run:
    """One timed run: wall time from `started` to the last message or task done, and CPU."""

    def __init__(self, workers):
        self.pids = [w.process.pid for w in workers]
        self.cpu_workers = tree_cpu(self.pids)
        self.cpu_machine = machine_cpu()
        self.started = time.time()

    def finish(self, last_done: float, count: int) -> dict:
        return {
            "per_s": count / (last_done - self.started),
            "worker_ms": (tree_cpu(self.pids) - self.cpu_workers) / count * 1000,
            "machine_ms": (machine_cpu() - self.cpu_machine) / count * 1000,
        }


def test_b_pipeline_throughput_against_a_no_op_task(settings, media, team, alice):
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL)")
    from mmsportal.celery import app

    emu = start_emulator(settings, rate_limits_enabled=False)
    env = {
        "RINGCENTRAL_SERVER_URL": emu.base_url,
        "DEMO_EMULATOR_URL": emu.base_url,
        "RINGCENTRAL_RATE_LIMITING": "False",
        "MEDIA_ROOT": str(media),
    }
    load_before = load()
    queue, workers = worker_pool(2, env)
    try:
        linked = link(emu, team, alice)
        warm = sms_batch(linked, alice, 40, "warm-up")
        enqueue(warm, queue)
        wait_for(lambda: all_sent(warm), timeout=120, message="the warm-up")

        # Each run ends when its last message or task finished, as recorded by the workers
        # themselves (sent_at, log time), so how often this process looks does not matter.
        def last_sent(ids) -> float:
            return (
                OutboundMessage.objects.filter(pk__in=ids)
                .aggregate(last=Max("sent_at"))["last"]
                .timestamp()
            )

        ids = sms_batch(linked, alice, PIPELINE_MESSAGES, "pipeline")
        run = Run(workers)
        enqueue(ids, queue)
        wait_for(lambda: all_sent(ids), timeout=600, interval=0.2, message="the pipeline")
        pipeline = run.finish(last_sent(ids), PIPELINE_MESSAGES)

        def floor_batch(ids):
            for message_id in ids:
                app.send_task("tests.bench.floor.floor_send", args=(message_id,), queue=queue)

        floor_batch(sms_batch(linked, alice, 20, "floor warm-up"))
        ids = sms_batch(linked, alice, PIPELINE_MESSAGES, "floor")
        run = Run(workers)
        floor_batch(ids)
        wait_for(lambda: all_sent(ids), timeout=600, interval=0.2, message="the floor")
        floor = run.finish(last_sent(ids), PIPELINE_MESSAGES)

        since = [len(w.output) for w in workers]
        for i in range(20):
            app.send_task("celery.accumulate", args=(i,), queue=queue)
        wait_for(lambda: len(done_times(workers, "celery.accumulate", since)) >= 20, timeout=60)
        since = [len(w.output) for w in workers]
        run = Run(workers)
        for i in range(PIPELINE_MESSAGES):
            app.send_task("celery.accumulate", args=(i,), queue=queue)
        wait_for(
            lambda: len(done_times(workers, "celery.accumulate", since)) >= PIPELINE_MESSAGES,
            timeout=600,
            interval=0.2,
            message="the no-op tasks",
        )
        noop = run.finish(max(done_times(workers, "celery.accumulate", since)), PIPELINE_MESSAGES)

        sends = emu.sends()
        # The warm-ups, the pipeline and the floor: every message accepted exactly once.
        assert sum(1 for e in sends if e["status"] == 200) == 2 * PIPELINE_MESSAGES + 60
        assert len({e["message_id"] for e in sends}) == len(sends)
    finally:
        stop_pool(workers)
        emu.stop()
    RESULTS["b"] = {
        "messages": PIPELINE_MESSAGES,
        "pipeline": pipeline,
        "floor": floor,
        "noop": noop,
        "load": f"{load_before} / {load()}",
    }
    write_report()


# --- (c) use of the allowed rate -------------------------------------------------------------


# (emulator's limit, emulator's window, what the portal is configured with or None for
# RingCentral's defaults): the same on both sides, and a limit and window the emulator reports
# that differ from the portal's configuration (10 per 10 s against the default 40 per 60 s).
RATE_SCENARIOS = {
    "configured as reported": (
        RATE_LIMIT,
        RATE_WINDOW,
        {"limit": RATE_LIMIT, "window": RATE_WINDOW},
    ),
    "reported differs": (10, 10.0, None),
}


@pytest.mark.parametrize("scenario", list(RATE_SCENARIOS))
def test_c_use_of_the_allowed_rate_over_three_windows(settings, media, team, alice, scenario):
    limit, window, configured = RATE_SCENARIOS[scenario]
    emu = start_emulator(
        settings,
        rate_limits_enabled=True,
        rate_window=window,
        rate_limits={"Light": 50, "Medium": limit, "Heavy": 10, "Auth": 5},
    )
    env = {
        "RINGCENTRAL_SERVER_URL": emu.base_url,
        "DEMO_EMULATOR_URL": emu.base_url,
        "MEDIA_ROOT": str(media),
    }
    if configured:
        rates = {"Medium": configured}
        env["RINGCENTRAL_RATE_LIMITS"] = json.dumps(rates)
        settings.RINGCENTRAL_RATE_LIMITS = {**settings.RINGCENTRAL_RATE_LIMITS, **rates}
    from tests.test_send_task import clear_shared_limiter

    clear_shared_limiter()
    load_before = load()
    queue, workers = worker_pool(2, env)
    try:
        linked = link(emu, team, alice)
        count = 4 * limit
        ids = sms_batch(linked, alice, count, "paced")
        enqueue(ids, queue)
        wait_for(lambda: all_sent(ids), timeout=10 * RATE_WINDOW, interval=0.2, message="sends")
        sends = emu.sends()
    finally:
        stop_pool(workers)
        emu.stop()
    statuses = [e["status"] for e in sends]
    assert statuses.count(429) == 0
    assert statuses.count(200) == count
    times = sorted(e["time"] for e in sends)
    # RingCentral's sliding window lets request i go at floor(i / limit) windows after the first.
    needed = (count - 1) // limit * window
    taken = times[-1] - times[0]
    portal = configured or configured_default()
    RESULTS.setdefault("c", {})[scenario] = {
        "limit": limit,
        "window": window,
        "configured": f"{portal['limit']} per {portal['window']:.0f} s",
        "messages": count,
        "needed_s": needed,
        "taken_s": taken,
        "use": needed / taken,
        "rejected": statuses.count(429),
        "load": f"{load_before} / {load()}",
    }
    write_report()


def configured_default() -> dict:
    from messaging.ringcentral import limits

    return limits.rate_limit_defaults()["Medium"]


# --- (d) memory of a send from local storage and from S3 ----------------------------------------

MEMORY_TOTALS = (145_000, MAX_TOTAL)
S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def s3_server():
    """A moto S3 server in a child process, so its memory is not the send's."""
    from tests.test_runportal import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(endpoint), timeout=30, message="the S3 server")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(endpoint: str) -> bool:
    try:
        requests.get(endpoint, timeout=1)
    except requests.ConnectionError:
        return False
    return True


def use_s3(settings, endpoint: str) -> None:
    import boto3

    name = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", **S3_CREDENTIALS
    ).create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": S3_CREDENTIALS["aws_access_key_id"],
                "secret_key": S3_CREDENTIALS["aws_secret_access_key"],
                "default_acl": "private",
                "file_overwrite": False,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_d_memory_per_send_by_storage(settings, media, team, alice, monkeypatch, storage, request):
    from messaging.ringcentral import multipart

    if storage == "s3":
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        use_s3(settings, request.getfixturevalue("s3_server"))
    emu = start_emulator(settings, rate_limits_enabled=False)
    rows = []
    try:
        linked = link(emu, team, alice)
        for total in MEMORY_TOTALS:
            message = outbox.message_for_sending(mms(linked, alice, total, seed=total).pk)
            client = client_for(message.connection, just_read=True)

            def send(message=message, client=client):
                client.send(*wire_message(message))

            def storages_own_open(message=message, client=client):
                # What the send held before: django-storages' open (S3File on S3).
                sender, to, text, files = wire_message(message)
                plain = [
                    multipart.StoredAttachment(
                        f.storage, f.name, f.filename, f.content_type, f.size
                    )
                    for f in files
                ]
                client.send(sender, to, text, plain)

            rows.append(
                {
                    "total": total,
                    "peak_kb": peak_of(send) / 1000,
                    "before_kb": peak_of(storages_own_open) / 1000,
                }
            )
        (last, *_) = emu.sends()[::-1]
        assert last["status"] == 200 and len(last["parts"]) == FILES + 1
    finally:
        emu.stop()
    RESULTS.setdefault("d", {})[storage] = rows
    write_report()


# --- the report -------------------------------------------------------------------------------


def write_report() -> None:
    lines = [
        SECTION,
        "",
        "Produced by `tests/bench/test_bench_send.py` (`make bench`); each figure is a ratio to a "
        "baseline measured in the same run. The emulator runs in a child process on the same "
        "machine. To re-run this section alone: `DATABASE_URL=postgres://… "
        "CELERY_BROKER_URL=redis://… BENCH=1 .venv/bin/python -m pytest -q -p no:cacheprovider "
        "tests/bench/test_bench_send.py` ((b) needs PostgreSQL and Redis; the others run "
        "anywhere).",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}",
        f"- Run on: {databases()}",
        "- Load average (1 min) before / after each benchmark is given with it: other work on "
        "the machine inflates the times (the ratios, taken within one run, suffer least).",
        "",
    ]
    if "a" in RESULTS:
        lines += [
            "### (a) CPU and memory per MMS (10 files)",
            "",
            "`RingCentralClient.send` for a message as a worker holds it after the claim (token, "
            "body streamed from storage with the limits checked again, POST, answer parsed) "
            "against writing the same body, built beforehand and held in memory, over "
            "`http.client` on a kept-alive connection. Over https, as RingCentral is served, "
            "and over plain http, as demo mode uses the emulator. "
            f"{ROUNDS} alternating rounds of {PER_ROUND} sends each after {WARMUP} warm-ups; "
            "the ratio is the median of the rounds' ratios. Target: CPU ≤ 1.5× at 1,450,000 "
            "bytes; memory flat as attachments grow. Peak memory is tracemalloc's (Python "
            "allocations); the lower bound holds the whole body.",
            "",
            "| Transport | Files total | Body | CPU send (ms) | CPU lower bound (ms) | Ratio | "
            "Peak memory send (kB) | Peak memory lower bound (kB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for transport, result in RESULTS["a"].items():
            for r in result["rows"]:
                lines.append(
                    f"| {transport} | {r['total']:,} | {r['body']:,} | {r['cpu_send_ms']:.2f} | "
                    f"{r['cpu_raw_ms']:.2f} | {r['ratio']:.2f}× | {r['peak_send_kb']:,.0f} | "
                    f"{r['peak_raw_kb']:,.0f} |"
                )
        lines.append("")
        for transport, result in RESULTS["a"].items():
            rows = result["rows"]
            small, large = rows[0], rows[-1]
            lines.append(
                f"- {transport}: {large['ratio']:.2f}× the lower bound at the largest size "
                f"({met(large['ratio'] <= 1.5)}); memory {small['peak_send_kb']:,.0f} kB → "
                f"{large['peak_send_kb']:,.0f} kB while the body grows "
                f"{large['body'] / small['body']:.0f}-fold "
                f"({met(large['peak_send_kb'] < 1.2 * small['peak_send_kb'] + 20)}). "
                f"Load: {result['load']}."
            )
        lines.append("")
        if "a_floor" in RESULTS:
            lines += [
                "The same largest send against the least a send of files kept in storage does "
                "over TLS: the lower bound plus reading each stored file into its place in a "
                "body laid out beforehand (`storage_floor` in tests/bench/test_bench_send.py), "
                "measured the same way. Over plain http the kernel could copy files to the "
                "socket itself (sendfile), which this floor does not do.",
                "",
                "| Transport | CPU send (ms) | CPU lower bound with files read (ms) | Ratio |",
                "|---|---:|---:|---:|",
            ]
            for transport, r in RESULTS["a_floor"].items():
                lines.append(
                    f"| {transport} | {r['cpu_send_ms']:.2f} | {r['cpu_floor_ms']:.2f} | "
                    f"{r['ratio']:.2f}× |"
                )
            lines.append("")
        for transport, parts in RESULTS.get("a_parts", {}).items():
            lines += [
                f"Where the CPU of the largest send goes, {transport} (each step measured "
                "alone, ms):",
                "",
                "| Step | CPU (ms) |",
                "|---|---:|",
            ]
            for name, ms in parts.items():
                lines.append(f"| {name} | {ms:.2f} |")
            lines.append("")
    if "b" in RESULTS:
        b = RESULTS["b"]
        runs = [
            ("`send_message` (the pipeline)", b["pipeline"]),
            ("floor (tests/bench/floor.py)", b["floor"]),
            ("no-op task (`celery.accumulate`)", b["noop"]),
        ]
        noop = b["noop"]["per_s"]
        ratio = b["pipeline"]["per_s"] / noop
        speed = b["pipeline"]["per_s"] / b["floor"]["per_s"]
        cpu = b["pipeline"]["worker_ms"] / b["floor"]["worker_ms"]
        lines += [
            "### (b) Pipeline throughput",
            "",
            f"{b['messages']} SMS per run with two worker processes (concurrency 1 each) and "
            "the limiter off, on the same broker and workers: the pipeline (claim, token, POST, "
            "record), the floor (one conditional UPDATE, one SELECT, the POST over "
            "`http.client`, one UPDATE: the least a pipeline of one task per message does, "
            "without any of the safety), and as many no-op tasks. Target: pipeline ≥ 0.8× "
            "the floor's messages/s at ≤ 1.5× its worker CPU per message. CPU per message: "
            "the worker processes, and the whole machine (the test process, emulator, "
            f"PostgreSQL and Redis included). Load: {b['load']}.",
            "",
            "| Run | Messages/s | × no-op | CPU workers (ms/msg) | CPU machine (ms/msg) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, run in runs:
            lines.append(
                f"| {name} | {run['per_s']:.0f} | {run['per_s'] / noop:.2f}× | "
                f"{run['worker_ms']:.2f} | {run['machine_ms']:.2f} |"
            )
        lines += [
            "",
            f"- Pipeline {speed:.2f}× the floor's throughput (target ≥ 0.8×: {met(speed >= 0.8)}) "
            f"and {cpu:.2f}× its worker CPU per message (target ≤ 1.5×: {met(cpu <= 1.5)}); "
            f"{ratio:.2f}× the no-op task, where the floor reaches "
            f"{b['floor']['per_s'] / noop:.2f}×. The machine's CPU per message is its busy time "
            "over the run: on a shared machine it follows the run's length more than the work.",
            "",
        ]
    if "c" in RESULTS:
        lines += [
            "### (c) Use of the allowed rate",
            "",
            "The emulator enforces a limit and window on the Medium group and reports them in "
            "`X-Rate-Limit-*`; the portal starts from its configuration (RingCentral's default "
            "40 per 60 s unless set) and paces by what RingCentral reports. 4 × limit messages, "
            "i.e. three full windows after the first burst, two worker processes. Use = the "
            "least time the limit allows / the time taken. Target: ≥ 95 %, no 429.",
            "",
            "| Scenario | Emulator | Portal configured | Messages | Least time allowed (s) | "
            "Time taken (s) | Use | 429 answers | Target | Load |",
            "|---|---|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for scenario, c in RESULTS["c"].items():
            lines.append(
                f"| {scenario} | {c['limit']} per {c['window']:.0f} s | {c['configured']} | "
                f"{c['messages']} | {c['needed_s']:.1f} | {c['taken_s']:.1f} | {c['use']:.1%} | "
                f"{c['rejected']} | {met(c['use'] >= 0.95 and c['rejected'] == 0)} | "
                f"{c['load']} |"
            )
        lines.append("")
    if "d" in RESULTS:
        lines += [
            "### (d) Memory of a send by storage",
            "",
            f"Peak traced Python memory (tracemalloc) of `RingCentralClient.send` for an MMS of "
            f"{FILES} files kept in local storage and on S3 (a moto server in a child process), "
            "against the same send with the files opened by the storage's own `open` "
            "(django-storages' `S3File` downloads each whole object). Target: one buffer "
            "whatever the storage and size.",
            "",
            "| Storage | Files total | Peak send (kB) | Peak with the storage's own open (kB) |",
            "|---|---:|---:|---:|",
        ]
        for storage, found in RESULTS["d"].items():
            for r in found:
                lines.append(
                    f"| {storage} | {r['total']:,} | {r['peak_kb']:,.0f} | {r['before_kb']:,.0f} |"
                )
        lines.append("")
    section = "\n".join(lines).rstrip("\n") + "\n"
    replace_section(SECTION, section)
