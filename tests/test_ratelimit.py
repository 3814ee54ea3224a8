"""messaging.ratelimit: one shared limiter per RingCentral user, on Redis and on the database.

Single-process tests drive an injected clock (no sleeping). The two-process tests run real
worker processes against the same backend and check the combined grants afterwards.

Run as ``python -m tests.test_ratelimit '<json>'`` this module is one of those worker processes.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from messaging.ringcentral import limits
from messaging.sending import ratelimit
from messaging.sending.ratelimit import (
    DatabaseRateLimiter,
    LimitKey,
    NullRateLimiter,
    Rate,
    RedisRateLimiter,
)

REPO = Path(__file__).resolve().parent.parent
TEST_PREFIX = "mmsportal-test:ratelimit:"

ADA = "1001/2001"  # account/extension identity strings
BOB = "1001/2002"
NUMBER = "+16505550100"


def redis_url():
    broker = settings.CELERY_BROKER_URL
    default = (
        broker if broker.startswith(("redis://", "rediss://")) else "redis://127.0.0.1:6379/15"
    )
    return os.environ.get("RATELIMIT_TEST_REDIS_URL", default)


def redis_client():
    import redis

    client = redis.Redis.from_url(redis_url(), socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {redis_url()}")
    return client


class FakeClock:
    def __init__(self, start=1_700_000_000.0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


RATES = {
    "Medium": Rate(3, 10.0),
    "Light": Rate(5, 10.0),
    limits.NUMBER_GROUP: Rate(4, 10.0),
}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def redis_prefix():
    client = redis_client()
    prefix = f"{TEST_PREFIX}{uuid.uuid4().hex}:"
    yield prefix
    # Only our own keys: the database may be shared with other work.
    for key in client.scan_iter(match=prefix + "*", count=500):
        client.delete(key)


@pytest.fixture(params=["redis", "database"])
def make_limiter(request, clock):
    """A factory, so a test can build a second limiter (another worker) on the same state."""
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        client = redis_client()

        def factory(rates=RATES, margin=0.0, **options):
            return RedisRateLimiter(
                client, rates, prefix=prefix, clock=clock, margin=margin, **options
            )

    else:
        request.getfixturevalue("db")

        def factory(rates=RATES, margin=0.0, **options):
            return DatabaseRateLimiter(rates, clock=clock, margin=margin, **options)

    return factory


@pytest.fixture
def limiter(make_limiter):
    return make_limiter()


SEND = LimitKey(ADA, "Medium")
READ = LimitKey(ADA, "Light")


# --- the sliding window ---------------------------------------------------------------------


def test_grants_up_to_the_limit_then_says_how_long_to_wait(limiter, clock):
    assert [limiter.try_acquire([SEND]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire([SEND]) == pytest.approx(10.0)
    assert limiter.usage(SEND) == 3


def test_a_refusal_takes_nothing(limiter, clock):
    for _ in range(3):
        limiter.try_acquire([SEND])
    for _ in range(5):
        assert limiter.try_acquire([SEND]) > 0
    assert limiter.usage(SEND) == 3
    clock.advance(10)
    assert limiter.try_acquire([SEND]) == 0.0


def test_sliding_window_frees_one_slot_as_each_grant_ages_out(limiter, clock):
    for _ in range(3):
        assert limiter.try_acquire([SEND]) == 0.0
        clock.advance(2)  # grants at t=0, 2, 4
    clock.advance(1)  # t=7
    assert limiter.try_acquire([SEND]) == pytest.approx(3.0)  # t=0 leaves at t=10
    clock.advance(3)  # t=10
    assert limiter.try_acquire([SEND]) == 0.0
    clock.advance(0.5)  # t=10.5; next to leave is t=2, at t=12
    assert limiter.try_acquire([SEND]) == pytest.approx(1.5)
    clock.advance(1.5)
    assert limiter.try_acquire([SEND]) == 0.0
    assert limiter.usage(SEND) == 3


def test_margin_widens_the_window(make_limiter, clock):
    limiter = make_limiter(margin=2.0, margin_share=1.0)
    for _ in range(3):
        limiter.try_acquire([SEND])
    assert limiter.try_acquire([SEND]) == pytest.approx(12.0)
    clock.advance(10)
    assert limiter.try_acquire([SEND]) == pytest.approx(2.0)


def test_groups_and_users_have_separate_budgets(limiter):
    for _ in range(3):
        limiter.try_acquire([SEND])
    assert limiter.try_acquire([SEND]) > 0
    assert limiter.try_acquire([READ]) == 0.0
    assert limiter.try_acquire([LimitKey(BOB, "Medium")]) == 0.0


def test_state_is_shared_between_limiter_instances(make_limiter):
    first, second = make_limiter(), make_limiter()
    first.try_acquire([SEND])
    second.try_acquire([SEND])
    first.try_acquire([SEND])
    assert second.try_acquire([SEND]) > 0


def test_unknown_group_is_an_error(limiter):
    with pytest.raises(ValueError, match="no rate limit configured for group 'Heavy'"):
        limiter.try_acquire([LimitKey(ADA, "Heavy")])


# --- several keys at once -------------------------------------------------------------------


def test_all_keys_or_none(limiter):
    other = LimitKey(BOB, "Medium")
    for _ in range(3):
        limiter.try_acquire([SEND])
    assert limiter.try_acquire([other, SEND]) == pytest.approx(10.0)
    assert limiter.usage(other) == 0
    assert limiter.try_acquire([other]) == 0.0


def test_wait_is_the_longest_of_the_keys(limiter, clock):
    number = LimitKey.for_number(NUMBER)
    limiter.try_acquire([SEND])  # t=0
    clock.advance(4)
    for _ in range(2):
        limiter.try_acquire([SEND, number])  # t=4
    limiter.try_acquire([number, LimitKey(BOB, "Medium")])
    limiter.try_acquire([number, LimitKey(BOB, "Medium")])  # number full since t=4
    clock.advance(1)  # t=5: SEND frees at 10, the number at 14
    assert limiter.try_acquire([SEND, number]) == pytest.approx(9.0)


def test_sending_number_is_limited_across_users(limiter):
    for identity in (ADA, BOB, ADA, BOB):
        assert limiter.try_acquire(ratelimit.send_keys(identity, NUMBER)) == 0.0
    # Bob has used 2 of 3 sends, but the number has used its 4.
    assert limiter.try_acquire(ratelimit.send_keys(BOB, NUMBER)) > 0
    assert limiter.try_acquire(ratelimit.send_keys(BOB, "+16505550199")) == 0.0


def test_same_key_twice_counts_once(limiter):
    assert limiter.try_acquire([SEND, SEND]) == 0.0
    assert limiter.usage(SEND) == 1


# --- pauses ---------------------------------------------------------------------------------


def test_pause_blocks_the_group_for_every_worker(make_limiter, clock):
    worker_a, worker_b = make_limiter(), make_limiter()
    worker_a.pause(SEND, 30)
    assert worker_b.try_acquire([SEND]) == pytest.approx(30.0)
    assert worker_b.try_acquire([SEND, LimitKey.for_number(NUMBER)]) == pytest.approx(30.0)
    assert worker_b.usage(LimitKey.for_number(NUMBER)) == 0
    # The user's other groups and other users go on.
    assert worker_b.try_acquire([READ]) == 0.0
    assert worker_b.try_acquire([LimitKey(BOB, "Medium")]) == 0.0
    clock.advance(29.5)
    assert worker_a.try_acquire([SEND]) == pytest.approx(0.5)
    clock.advance(0.5)
    assert worker_a.try_acquire([SEND]) == 0.0


def test_a_shorter_pause_never_shortens_a_longer_one(limiter, clock):
    limiter.pause(SEND, 60)
    limiter.pause(SEND, 5)
    assert limiter.try_acquire([SEND]) == pytest.approx(60.0)


def test_pause_without_retry_after_uses_ringcentrals_advice(limiter):
    limiter.pause(SEND, None)
    assert limiter.try_acquire([SEND]) == pytest.approx(limits.DEFAULT_RETRY_AFTER_SECONDS)


def test_margin_is_a_small_share_of_a_short_window(make_limiter, clock):
    limiter = make_limiter(margin=2.0)  # the default share: 3 % of 10 s
    for _ in range(3):
        limiter.try_acquire([SEND])
    assert limiter.try_acquire([SEND]) == pytest.approx(10.3)


# --- adapting to X-Rate-Limit-* -------------------------------------------------------------


def test_reported_limit_and_window_replace_the_configured_rate_as_a_pair(limiter, clock):
    # Configured 3 per 10 s; RingCentral says 6 per 5 s: more in a shorter window, both hold.
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "6", "X-Rate-Limit-Window": "5"})
    assert [limiter.try_acquire([SEND]) for _ in range(6)] == [0.0] * 6
    assert limiter.try_acquire([SEND]) == pytest.approx(5.0)
    clock.advance(5)
    assert [limiter.try_acquire([SEND]) for _ in range(6)] == [0.0] * 6
    assert limiter.try_acquire([SEND]) > 0


def test_a_later_report_replaces_the_earlier_pair(limiter):
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "6", "X-Rate-Limit-Window": "5"})
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "2", "X-Rate-Limit-Window": "60"})
    assert [limiter.try_acquire([SEND]) for _ in range(2)] == [0.0, 0.0]
    assert limiter.try_acquire([SEND]) == pytest.approx(60.0)


def test_operators_maximum_caps_the_reported_pair(make_limiter, clock):
    # At most 4 per 20 s whatever RingCentral says: of a reported 6 per 5 s, 1 per 5 s is left.
    limiter = make_limiter(maximums={"Medium": Rate(4, 20.0)})
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "6", "X-Rate-Limit-Window": "5"})
    assert limiter.try_acquire([SEND]) == 0.0
    assert limiter.try_acquire([SEND]) == pytest.approx(5.0)
    clock.advance(5)
    assert limiter.try_acquire([SEND]) == 0.0


def test_operators_maximum_caps_a_longer_reported_window_by_its_limit(make_limiter):
    limiter = make_limiter(maximums={"Medium": Rate(2, 10.0)})
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "50", "X-Rate-Limit-Window": "60"})
    assert [limiter.try_acquire([SEND]) for _ in range(2)] == [0.0, 0.0]
    assert limiter.try_acquire([SEND]) == pytest.approx(60.0)


def test_maximums_come_from_settings(settings):
    settings.RINGCENTRAL_RATE_LIMIT_MAX = {"Medium": {"limit": 40}}
    assert ratelimit.configured_maximums() == {"Medium": Rate(40, 60.0)}
    settings.RINGCENTRAL_RATE_LIMIT_MAX = {"Medium": {"limit": 0, "window": 60}}
    with pytest.raises(ValueError, match="RINGCENTRAL_RATE_LIMIT_MAX"):
        ratelimit.configured_maximums()


def test_effective_rate_of_lone_values_only_slows_down():
    configured = Rate(40, 60.0)
    assert ratelimit.effective_rate(configured, 100, None) == Rate(40, 60.0)
    assert ratelimit.effective_rate(configured, 10, None) == Rate(10, 60.0)
    assert ratelimit.effective_rate(configured, None, 120.0) == Rate(40, 120.0)
    assert ratelimit.effective_rate(configured, 10, 10.0) == Rate(10, 10.0)


def test_observed_lower_limit_wins(limiter):
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "2", "X-Rate-Limit-Window": "10"})
    assert limiter.try_acquire([SEND]) == 0.0
    assert limiter.try_acquire([SEND]) == 0.0
    assert limiter.try_acquire([SEND]) > 0


def test_observed_higher_limit_is_ignored(limiter):
    limiter.observe(SEND, {"x-rate-limit-limit": "100"})
    assert [limiter.try_acquire([SEND]) for _ in range(4)][-1] > 0


def test_observed_longer_window_wins(limiter):
    limiter.observe(SEND, {"X-Rate-Limit-Window": "60"})
    for _ in range(3):
        limiter.try_acquire([SEND])
    assert limiter.try_acquire([SEND]) == pytest.approx(60.0)


def test_remaining_zero_blocks_until_the_window_has_room(limiter, clock):
    limiter.try_acquire([SEND])  # t=0; RingCentral has counted two requests we never saw
    clock.advance(1)
    limiter.observe(
        SEND,
        {"X-Rate-Limit-Limit": "3", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Window": "10"},
    )
    assert limiter.usage(SEND) == 3
    assert limiter.try_acquire([SEND]) == pytest.approx(9.0)
    clock.advance(9)  # our own grant leaves RingCentral's window too
    assert limiter.try_acquire([SEND]) == 0.0
    assert limiter.try_acquire([SEND]) == pytest.approx(1.0)


def test_remaining_that_matches_our_count_changes_nothing(limiter):
    limiter.try_acquire([SEND])
    limiter.try_acquire([SEND])
    limiter.observe(SEND, {"X-Rate-Limit-Limit": "3", "X-Rate-Limit-Remaining": "1"})
    assert limiter.usage(SEND) == 2
    assert limiter.try_acquire([SEND]) == 0.0


def test_responses_without_rate_headers_change_nothing(limiter):
    limiter.observe(SEND, {"Content-Type": "application/json", "X-Rate-Limit-Limit": "lots"})
    assert [limiter.try_acquire([SEND]) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_parse_headers_is_case_insensitive_and_forgiving():
    seen = ratelimit.parse_headers(
        {"x-rate-limit-limit": " 40 ", "X-RATE-LIMIT-REMAINING": "0", "X-Rate-Limit-Window": "-1"}
    )
    assert seen == ratelimit.Observation(limit=40, remaining=0, window=None)


# --- helpers and configuration --------------------------------------------------------------


def test_acquire_sleeps_through_short_waits_only(limiter, clock):
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.advance(seconds)

    for _ in range(3):
        limiter.try_acquire([SEND])
    assert limiter.acquire([SEND], max_wait=5, sleep=sleep) == pytest.approx(10.0)
    assert slept == []
    assert limiter.acquire([SEND], max_wait=15, sleep=sleep) == 0.0
    assert slept == [pytest.approx(10.0)]


def test_rates_come_from_settings_over_ringcentrals_defaults():
    rates = ratelimit.configured_rates({"Medium": {"limit": 20}, "Custom": {"limit": 1}})
    assert rates["Medium"] == Rate(20, 60.0)
    assert rates["Light"] == Rate(50, 60.0)
    assert rates[limits.NUMBER_GROUP] == Rate(50, 60.0)
    assert rates["Custom"] == Rate(1, 60.0)
    with pytest.raises(ValueError, match="positive integer limit"):
        ratelimit.configured_rates({"Medium": {"limit": 0}})
    assert ratelimit.configured_rates()["Medium"] == Rate(40, 60.0)


@override_settings(RINGCENTRAL_RATE_LIMITING=False)
def test_limiting_can_be_switched_off():
    limiter = ratelimit.get_limiter()
    assert isinstance(limiter, NullRateLimiter)
    assert all(limiter.try_acquire([SEND]) == 0.0 for _ in range(100))


@override_settings(CELERY_BROKER_URL="sqla+sqlite:////tmp/broker.sqlite3")
def test_database_backend_without_redis():
    assert isinstance(ratelimit.get_limiter(), DatabaseRateLimiter)


def test_redis_backend_with_a_redis_broker():
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/15"):
        limiter = ratelimit.get_limiter()
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.client.connection_pool.connection_kwargs["db"] == 15


def test_database_backend_prunes_old_grants(db, clock):
    from messaging.models import RateLimitGrant

    limiter = DatabaseRateLimiter(RATES, clock=clock, margin=0)
    for _ in range(3):
        limiter.try_acquire([SEND])
        clock.advance(6)
    limiter.try_acquire([SEND])
    # Grants that left the window are deleted by the next call on the key.
    assert RateLimitGrant.objects.count() == 2
    clock.advance(3600)
    assert limiter.cleanup(older_than=60) == 2


# --- two processes, real clocks -------------------------------------------------------------


def start_workers(spec, count=2):
    """Start worker processes, wait until each is ready, then release them together."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.test_ratelimit", json.dumps(spec)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for worker in workers:
        line = worker.stdout.readline()
        assert line.strip() == "ready", worker.stderr.read()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        results.append(json.loads(out))
    return results


def backend_spec(backend, request):
    if backend == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return {"backend": "redis", "url": redis_url(), "prefix": prefix}
    # The workers are other processes: they see only committed rows in the test database.
    assert not connection.in_atomic_block
    return {"backend": "database", "db_name": str(connection.settings_dict["NAME"])}


def serves_both_in_turn(backend) -> bool:
    """Redis and PostgreSQL's lock queue serve competing processes in turn. SQLite's busy
    handler lets the writer that holds the lock keep it while the other backs off, so there
    one process may win every grant."""
    return backend == "redis" or connection.vendor == "postgresql"


BACKENDS = [
    "redis",
    pytest.param("database", marks=pytest.mark.django_db(transaction=True)),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_never_grant_more_than_the_limit(backend, request):
    limit = 1000 if backend == "redis" else 300
    spec = {**backend_spec(backend, request), "mode": "exhaust", "limit": limit, "window": 600}
    results = start_workers(spec)
    granted = [len(result["grants"]) for result in results]
    assert sum(granted) == limit
    # The two really competed: their calls overlapped in time.
    (a_start, a_end), (b_start, b_end) = (result["span"] for result in results)
    assert a_start < b_end and b_start < a_end
    if serves_both_in_turn(backend):
        assert all(count > 0 for count in granted), granted


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_keep_the_sliding_window(backend, request):
    limit, window = 5, 0.4
    spec = {
        **backend_spec(backend, request),
        "mode": "slide",
        "limit": limit,
        "window": window,
        "duration": 1.6,
    }
    results = start_workers(spec)
    grants = [tuple(grant) for result in results for grant in result["grants"]]
    assert len(grants) >= limit
    if serves_both_in_turn(backend):
        assert all(result["grants"] for result in results), [len(r["grants"]) for r in results]
    # Each grant's time lies between the moments before and after its call. If the limiter is
    # right, any limit+1 grants span at least one window, so for the set starting with grant j
    # (by "before") and the `limit` grants after it that finished first, the span from j's
    # "before" to the latest "after" must be at least the window.
    grants.sort()
    for j, (before, _) in enumerate(grants):
        later_afters = sorted(after for _, after in grants[j + 1 :])
        if len(later_afters) < limit:
            break
        # 1 ms for the clocks' resolution (Redis reports microseconds).
        assert later_afters[limit - 1] - before >= window - 0.001, (j, grants)


def _worker_main(spec):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mmsportal.settings")
    if spec["backend"] == "database":
        settings.DATABASES["default"]["NAME"] = spec["db_name"]
    import django

    django.setup()
    rates = {"Medium": Rate(spec["limit"], float(spec["window"]))}
    if spec["backend"] == "redis":
        import redis

        limiter = RedisRateLimiter(
            redis.Redis.from_url(spec["url"]), rates, prefix=spec["prefix"], margin=0.0
        )
    else:
        limiter = DatabaseRateLimiter(rates, margin=0.0)
    key = LimitKey("shared-user", "Medium")
    # Connect and load scripts now, so both workers start the race at full speed.
    limiter.try_acquire([LimitKey(f"warm-up-{os.getpid()}", "Medium")])
    print("ready", flush=True)
    sys.stdin.readline()

    grants = []
    started = time.time()
    deadline = started + spec.get("duration", 30)
    while time.time() < deadline:
        before = time.time()
        wait = limiter.try_acquire([key])
        after = time.time()
        if wait == 0.0:
            grants.append((before, after))
        elif spec["mode"] == "exhaust":
            break  # nothing leaves a long window during the test: the budget is spent
        else:
            time.sleep(min(wait, 0.005))
    print(json.dumps({"grants": grants, "span": [started, time.time()]}), flush=True)


if __name__ == "__main__":
    _worker_main(json.loads(sys.argv[1]))
