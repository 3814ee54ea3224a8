"""One rate limiter per RingCentral user, shared by every worker process on every machine.

RingCentral counts each user's requests per usage-plan group (Medium for sends, Light for reads,
…) in a sliding window, and every request made while a penalty runs starts the penalty again.
So the portal paces itself to stay under those limits: in normal operation it never gets a 429.

Keys
    ``LimitKey(identity, group)`` names one budget. For a RingCentral user, ``identity`` is a
    stable string for the account and extension (``identity(account_id, extension_id)``; a
    connection's key is ``key_for(connection, group)``) and ``group`` one of RingCentral's
    groups. ``LimitKey.for_number("+1…")`` is the per-sending-number budget (RingCentral's
    content policy: 50 messages per number per minute). A send takes the
    user's Medium key and the number's key together: ``send_keys(user, from_number)``.

Semantics (sliding-window log)
    Every grant is recorded with its time. ``try_acquire(keys)`` grants only when, for every key,
    fewer than ``limit`` grants lie within the last ``window + margin`` seconds and no pause is
    running; then it records one grant on every key at once and returns 0.0. Otherwise it records
    nothing and returns how many seconds to wait before asking again (the earliest moment all
    keys could have room). The margin covers the time between our grant and the request's arrival
    at RingCentral, so that two requests never land closer than RingCentral's window allows.

    ``pause(key, seconds)``, after a 429: nobody gets that key until the time has passed.
    ``observe(key, headers)``, after every response: adapts to what RingCentral reports.
    ``X-Rate-Limit-Limit`` and ``X-Rate-Limit-Window`` are one pair, the truth for that user and
    group once seen: the configured rate is only the starting point, so a reported 10 per 10 s
    replaces a configured 40 per 60 s (mixing them, the lower limit with the longer window, would
    use a sixth of what RingCentral allows). A lone limit or window, without the other, is only
    trusted to slow down (a lower limit, a longer window). The operator's maximum for a group
    (``settings.RINGCENTRAL_RATE_LIMIT_MAX``) caps whatever is reported: the pair in use never
    allows more than that many requests in that many seconds. ``X-Rate-Limit-Remaining``: when
    RingCentral has counted more requests than we granted — another installation, a restart that
    lost state — the difference is recorded as grants made now, so ``Remaining: 0`` blocks the key
    until the window has room again.

    The margin added to a window is ``margin`` seconds at most, and at most ``MARGIN_SHARE`` of
    the window, so that a short window RingCentral reports is not mostly margin.

Backends
    ``get_limiter()`` picks Redis when ``CELERY_BROKER_URL`` is a Redis URL (one Lua script per
    call, so checking and granting are one atomic step, timed by the Redis server's clock), else
    the database (a short transaction that locks one row per key, timed by PostgreSQL's clock or
    the local clock on SQLite, where every worker runs on the same machine). Limits come from
    ``settings.RINGCENTRAL_RATE_LIMITS``; ``settings.RINGCENTRAL_RATE_LIMITING = False`` turns
    limiting off (benchmarks against the emulator).

Call the limiter outside any open database transaction: the database backend's row locks are held
until the outermost transaction ends.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connections, transaction

from messaging.ringcentral import limits

# Between our grant and RingCentral's count lie request building, the upload and network delay.
WINDOW_MARGIN_SECONDS = 2.0
# ... but never more than this share of the window: 0.3 s of a 10 s window, 1.8 s of a minute.
MARGIN_SHARE = 0.03
# A denial always asks for a measurable wait, so callers never spin.
MIN_WAIT_SECONDS = 0.001
# Observed limits are refreshed by every response; older ones are forgotten.
OBSERVATION_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LimitKey:
    """A budget: whose (``identity``) and which kind of request (``group``)."""

    identity: str
    group: str

    @classmethod
    def for_number(cls, phone_number: str) -> LimitKey:
        return cls(phone_number, limits.NUMBER_GROUP)

    @property
    def name(self) -> str:
        return f"{self.group}:{self.identity}"


def identity(account_id: str, extension_id: str) -> str:
    """The identity of a RingCentral user's budgets: RingCentral counts per user (extension)."""
    return f"{account_id}/{extension_id}"


def key_for(connection, group: str) -> LimitKey:
    """A linked RingCentral user's budget of `group` (a connection or any object with its
    `account_id` and `extension_id`)."""
    return LimitKey(identity(connection.account_id, connection.extension_id), group)


def send_keys(user: str, from_number: str) -> list[LimitKey]:
    """The keys one message send takes: the user's send group (`user` is their `identity`)
    and the sending number."""
    return [LimitKey(user, limits.SEND_GROUP), LimitKey.for_number(from_number)]


@dataclass(frozen=True)
class Rate:
    limit: int
    window: float


def configured_rates(raw: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Rate]:
    """Rates by group from ``settings.RINGCENTRAL_RATE_LIMITS`` over the defaults in limits.py.

    Each entry is ``{"limit": requests, "window": seconds}``; either may be left out.
    """
    if raw is None:
        raw = settings.RINGCENTRAL_RATE_LIMITS
    merged = limits.rate_limit_defaults()
    for group, values in raw.items():
        merged[group] = {**merged.get(group, {}), **values}
    rates = {}
    for group, values in merged.items():
        limit, window = values.get("limit"), values.get("window", limits.RATE_LIMIT_WINDOW_SECONDS)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1 or window <= 0:
            raise ValueError(
                f"RINGCENTRAL_RATE_LIMITS[{group!r}] needs a positive integer limit and a "
                f"positive window, got {dict(values)!r}"
            )
        rates[group] = Rate(limit, float(window))
    return rates


def configured_maximums(raw: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, Rate]:
    """The operator's caps by group from ``settings.RINGCENTRAL_RATE_LIMIT_MAX``: each entry
    ``{"limit": requests, "window": seconds}`` (window defaults to 60 s)."""
    if raw is None:
        raw = getattr(settings, "RINGCENTRAL_RATE_LIMIT_MAX", {}) or {}
    maximums = {}
    for group, values in raw.items():
        limit = values.get("limit") if isinstance(values, Mapping) else None
        window = values.get("window", limits.RATE_LIMIT_WINDOW_SECONDS) if limit else 0
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1 or window <= 0:
            raise ValueError(
                f"RINGCENTRAL_RATE_LIMIT_MAX[{group!r}] needs a positive integer limit and a "
                f"positive window, got {values!r}"
            )
        maximums[group] = Rate(limit, float(window))
    return maximums


def effective_rate(
    configured: Rate,
    observed_limit: int | None,
    observed_window: float | None,
    maximum: Rate | None = None,
) -> Rate:
    """The rate a key is paced by (without the margin); see the module docstring.

    The cap keeps the pair's window and lowers its limit so that no stretch of the maximum's
    window can hold more than the maximum's limit.
    """
    limit, window = configured.limit, configured.window
    if observed_limit and observed_window:
        limit, window = observed_limit, observed_window
    else:
        if observed_limit:
            limit = min(limit, observed_limit)
        if observed_window:
            window = max(window, observed_window)
    if maximum is not None:
        if window <= maximum.window:
            limit = min(limit, max(1, int(maximum.limit * window // maximum.window)))
        else:
            limit = min(limit, maximum.limit)
    return Rate(limit, window)


@dataclass(frozen=True)
class Observation:
    limit: int | None
    remaining: int | None
    window: float | None


def parse_headers(headers: Mapping[str, str]) -> Observation:
    """The ``X-Rate-Limit-*`` values of a response; missing or malformed ones are None."""
    lowered = {str(name).lower(): value for name, value in headers.items()}

    def number(name: str, minimum: int) -> int | None:
        try:
            value = int(str(lowered[name]).strip())
        except (KeyError, ValueError):
            return None
        return value if value >= minimum else None

    window = number("x-rate-limit-window", 1)
    return Observation(
        limit=number("x-rate-limit-limit", 1),
        remaining=number("x-rate-limit-remaining", 0),
        window=float(window) if window is not None else None,
    )


class RateLimiter:
    """The interface every backend provides. Times are seconds."""

    # False only for the limiter that grants everything: callers may skip gathering keys.
    enabled = True

    def __init__(
        self,
        rates: Mapping[str, Rate] | None = None,
        *,
        clock: Callable[[], float] | None = None,
        margin: float = WINDOW_MARGIN_SECONDS,
        margin_share: float = MARGIN_SHARE,
        maximums: Mapping[str, Rate] | None = None,
    ):
        self.rates = dict(rates) if rates is not None else configured_rates()
        self.maximums = dict(maximums) if maximums is not None else configured_maximums()
        # None: the backend's shared clock. Tests inject a fake one.
        self.clock = clock
        self.margin = margin
        self.margin_share = margin_share

    def margin_for(self, window: float) -> float:
        return min(self.margin, window * self.margin_share)

    def maximum(self, key: LimitKey) -> Rate | None:
        return self.maximums.get(key.group)

    def rate(self, key: LimitKey) -> Rate:
        try:
            return self.rates[key.group]
        except KeyError:
            raise ValueError(
                f"no rate limit configured for group {key.group!r}; "
                f"known groups: {', '.join(sorted(self.rates))}"
            ) from None

    def try_acquire(self, keys: Sequence[LimitKey]) -> float:
        """0.0 if one request was granted on every key; else seconds to wait, nothing taken."""
        raise NotImplementedError

    def pause(self, key: LimitKey, seconds: float | None = None) -> None:
        """Block ``key`` for everyone for ``seconds`` (default: RingCentral's 429 advice).

        A shorter pause never shortens a longer one already running.
        """
        raise NotImplementedError

    def observe(self, key: LimitKey, headers: Mapping[str, str]) -> None:
        """Adapt ``key`` to the ``X-Rate-Limit-*`` headers of a response RingCentral sent."""
        raise NotImplementedError

    def usage(self, key: LimitKey) -> int:
        """How many grants of ``key`` lie within its current window (for the console and tests)."""
        raise NotImplementedError

    def usage_after(self, key: LimitKey, seconds: float) -> int:
        """How many grants of ``key`` will still lie within its window ``seconds`` from now: its
        limit minus this is what it can grant before then (campaigns pace their releases by it)."""
        return self.usage(key)

    def current_limit(self, key: LimitKey) -> int:
        """The limit ``key`` is paced by now: what RingCentral reported, under the operator's
        maximum, else the configured one (see ``effective_rate``)."""
        return effective_rate(self.rate(key), None, None, self.maximum(key)).limit

    def acquire(
        self,
        keys: Sequence[LimitKey],
        *,
        max_wait: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Like ``try_acquire`` but sleeps through waits of at most ``max_wait`` seconds.

        Returns 0.0 once granted, or the wait that was too long to sleep through — the caller
        should then reschedule its work instead of holding a worker.
        """
        while True:
            wait = self.try_acquire(keys)
            if wait <= 0 or wait > max_wait:
                return wait
            sleep(wait)

    @staticmethod
    def _distinct(keys: Iterable[LimitKey]) -> list[LimitKey]:
        return list(dict.fromkeys(keys))

    def _pause_seconds(self, seconds: float | None) -> float:
        if seconds is None or seconds <= 0:
            return limits.DEFAULT_RETRY_AFTER_SECONDS
        return float(seconds)


class NullRateLimiter(RateLimiter):
    """Grants everything: ``RINGCENTRAL_RATE_LIMITING = False``."""

    enabled = False

    def __init__(self):
        super().__init__(rates={}, maximums={})

    def try_acquire(self, keys: Sequence[LimitKey]) -> float:
        return 0.0

    def pause(self, key: LimitKey, seconds: float | None = None) -> None:
        return None

    def observe(self, key: LimitKey, headers: Mapping[str, str]) -> None:
        return None

    def usage(self, key: LimitKey) -> int:
        return 0

    def usage_after(self, key: LimitKey, seconds: float) -> int:
        return 0


# --- Redis ----------------------------------------------------------------------------------

# Shared by the scripts: "now" from the caller (tests) or from the Redis server, so that workers
# on different machines share one clock. Effects replication makes TIME safe before writes.
_LUA_CLOCK = """
local function clock(arg)
  if arg ~= '' then return tonumber(arg), arg end
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local s = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  return tonumber(s), s
end
local function fmt(x) return string.format('%.6f', x) end
-- The reported pair replaces the configured one; a lone value only slows down; the operator's
-- maximum (max_limit 0: none) caps the result (RateLimiter docstring, effective_rate).
local function effective(seen, limit, window, margin, share, max_limit, max_window)
  local obs = redis.call('HMGET', seen, 'limit', 'window')
  if obs[1] and obs[2] then
    limit, window = tonumber(obs[1]), tonumber(obs[2])
  else
    if obs[1] then limit = math.min(limit, tonumber(obs[1])) end
    if obs[2] then window = math.max(window, tonumber(obs[2])) end
  end
  if max_limit > 0 then
    if window <= max_window then
      limit = math.min(limit, math.max(1, math.floor(max_limit * window / max_window)))
    else
      limit = math.min(limit, max_limit)
    end
  end
  return limit, window + math.min(margin, window * share)
end
"""

# KEYS: log, pause, seen for each limit key. ARGV: now, member, margin, margin share, then limit,
# window, maximum limit and maximum window for each key. Returns "0" when granted, else the wait
# in seconds.
_LUA_ACQUIRE = (
    _LUA_CLOCK
    + """
local now, now_s = clock(ARGV[1])
local member, margin, share = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 3
local wait = 0
local windows = {}
for i = 1, n do
  local log, pause, seen = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 4 * i
  local limit, window = effective(seen, tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), margin,
                                  share, tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]))
  windows[i] = window
  local paused = tonumber(redis.call('GET', pause) or '0')
  if paused > now then wait = math.max(wait, paused - now) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', fmt(now - window))
  local count = redis.call('ZCARD', log)
  if count >= limit then
    local entry = redis.call('ZRANGE', log, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(entry[2]) + window - now)
  end
end
if wait > 0 then return fmt(math.max(wait, tonumber(ARGV[#ARGV]))) end
for i = 1, n do
  redis.call('ZADD', KEYS[3 * i - 2], now_s, member)
  redis.call('PEXPIRE', KEYS[3 * i - 2], math.ceil(windows[i] * 1000) + 1000)
end
return '0'
"""
)

# KEYS: pause. ARGV: now, seconds. Returns the time the pause ends.
_LUA_PAUSE = (
    _LUA_CLOCK
    + """
local now = clock(ARGV[1])
local seconds = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ends = now + seconds
if ends > current then
  redis.call('SET', KEYS[1], fmt(ends), 'PX', math.ceil(seconds * 1000) + 1000)
  return fmt(ends)
end
return fmt(current)
"""
)

# KEYS: log, seen. ARGV: now, margin, limit, window, seen limit, seen window, remaining, member
# prefix, seen ttl ("" for values the response did not carry), margin share, maximum limit,
# maximum window. What a response reports replaces what an earlier one did, as a pair.
_LUA_OBSERVE = (
    _LUA_CLOCK
    + """
local now, now_s = clock(ARGV[1])
local log, seen = KEYS[1], KEYS[2]
if ARGV[5] ~= '' or ARGV[6] ~= '' then
  redis.call('DEL', seen)
  if ARGV[5] ~= '' then redis.call('HSET', seen, 'limit', ARGV[5]) end
  if ARGV[6] ~= '' then redis.call('HSET', seen, 'window', ARGV[6]) end
  redis.call('EXPIRE', seen, tonumber(ARGV[9]))
end
if ARGV[7] == '' then return 0 end
local limit, window = effective(seen, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[2]),
                                tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]))
local their_limit = tonumber(ARGV[5] ~= '' and ARGV[5] or limit)
local used = their_limit - tonumber(ARGV[7])
redis.call('ZREMRANGEBYSCORE', log, '-inf', fmt(now - window))
local unseen = math.min(used - redis.call('ZCARD', log), limit)
for j = 1, unseen do redis.call('ZADD', log, now_s, ARGV[8] .. j) end
if unseen > 0 then redis.call('PEXPIRE', log, math.ceil(window * 1000) + 1000) end
return math.max(unseen, 0)
"""
)

# KEYS: log, seen. ARGV: now, margin, limit, window, margin share, maximum limit and window.
_LUA_USAGE = (
    _LUA_CLOCK
    + """
local now = clock(ARGV[1])
local _, window = effective(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[2]),
                            tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
return redis.call('ZCOUNT', KEYS[1], '(' .. fmt(now - window), '+inf')
"""
)

# As _LUA_USAGE, counting only the grants still inside the window ARGV[8] seconds from now.
_LUA_USAGE_AFTER = (
    _LUA_CLOCK
    + """
local now = clock(ARGV[1])
local _, window = effective(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[2]),
                            tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
return redis.call('ZCOUNT', KEYS[1], '(' .. fmt(now - window + tonumber(ARGV[8])), '+inf')
"""
)


class RedisRateLimiter(RateLimiter):
    """Sorted-set logs in Redis, checked and granted by one Lua script per call.

    Per key: ``<prefix><group>:<identity>:log`` (grants scored by time), ``…:pause`` (end of a
    pause) and ``…:seen`` (limit and window RingCentral reported). Every key expires by itself.
    The default prefix carries a hash tag so that a Redis Cluster keeps them in one slot.
    """

    DEFAULT_PREFIX = "mmsportal:{ratelimit}:"

    def __init__(self, client, rates=None, *, prefix: str = DEFAULT_PREFIX, **kwargs):
        super().__init__(rates, **kwargs)
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_LUA_ACQUIRE)
        self._pause = client.register_script(_LUA_PAUSE)
        self._observe = client.register_script(_LUA_OBSERVE)
        self._usage = client.register_script(_LUA_USAGE)
        self._usage_after = client.register_script(_LUA_USAGE_AFTER)

    def _redis_key(self, key: LimitKey, part: str) -> str:
        return f"{self.prefix}{key.name}:{part}"

    def _now_arg(self) -> str:
        return repr(float(self.clock())) if self.clock is not None else ""

    def _rate_args(self, key: LimitKey) -> list:
        """Limit, window, maximum limit and maximum window (0, 0: none) of `key`."""
        rate, maximum = self.rate(key), self.maximum(key)
        return [
            rate.limit,
            repr(rate.window),
            maximum.limit if maximum else 0,
            repr(maximum.window if maximum else 0.0),
        ]

    def try_acquire(self, keys: Sequence[LimitKey]) -> float:
        keys = self._distinct(keys)
        if not keys:
            return 0.0
        redis_keys = []
        args = [self._now_arg(), uuid.uuid4().hex, repr(self.margin), repr(self.margin_share)]
        for key in keys:
            redis_keys += [self._redis_key(key, part) for part in ("log", "pause", "seen")]
            args += self._rate_args(key)
        args.append(repr(MIN_WAIT_SECONDS))
        return float(self._acquire(keys=redis_keys, args=args))

    def pause(self, key: LimitKey, seconds: float | None = None) -> None:
        self.rate(key)
        seconds = self._pause_seconds(seconds)
        self._pause(keys=[self._redis_key(key, "pause")], args=[self._now_arg(), repr(seconds)])

    def observe(self, key: LimitKey, headers: Mapping[str, str]) -> None:
        limit, window, max_limit, max_window = self._rate_args(key)
        seen = parse_headers(headers)
        if seen == Observation(None, None, None):
            return

        def arg(value) -> str:
            return "" if value is None else repr(value)

        self._observe(
            keys=[self._redis_key(key, "log"), self._redis_key(key, "seen")],
            args=[
                self._now_arg(),
                repr(self.margin),
                limit,
                window,
                arg(seen.limit),
                arg(seen.window),
                arg(seen.remaining),
                f"unseen:{uuid.uuid4().hex}:",
                OBSERVATION_TTL_SECONDS,
                repr(self.margin_share),
                max_limit,
                max_window,
            ],
        )

    def usage(self, key: LimitKey) -> int:
        limit, window, max_limit, max_window = self._rate_args(key)
        return int(
            self._usage(
                keys=[self._redis_key(key, "log"), self._redis_key(key, "seen")],
                args=[
                    self._now_arg(),
                    repr(self.margin),
                    limit,
                    window,
                    repr(self.margin_share),
                    max_limit,
                    max_window,
                ],
            )
        )

    def current_limit(self, key: LimitKey) -> int:
        seen_limit, seen_window = self.client.hmget(self._redis_key(key, "seen"), "limit", "window")
        return effective_rate(
            self.rate(key),
            int(seen_limit) if seen_limit else None,
            float(seen_window) if seen_window else None,
            self.maximum(key),
        ).limit

    def usage_after(self, key: LimitKey, seconds: float) -> int:
        limit, window, max_limit, max_window = self._rate_args(key)
        return int(
            self._usage_after(
                keys=[self._redis_key(key, "log"), self._redis_key(key, "seen")],
                args=[
                    self._now_arg(),
                    repr(self.margin),
                    limit,
                    window,
                    repr(self.margin_share),
                    max_limit,
                    max_window,
                    repr(float(seconds)),
                ],
            )
        )


@functools.lru_cache(maxsize=4)
def _redis_client(url: str):
    import redis

    # One pool per process and URL; redis-py replaces it after a fork by itself.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


# --- Database -------------------------------------------------------------------------------


class DatabaseRateLimiter(RateLimiter):
    """Grants as rows (``RateLimitGrant``) under a locked row per key (``RateLimitBucket``).

    Each call is one short transaction: lock the keys' rows in a fixed order (``select_for_update``
    on PostgreSQL; on SQLite the IMMEDIATE transaction already admits one writer at a time), read
    the clock only after the locks are held, prune grants that left the window, count, grant.
    """

    def __init__(self, rates=None, *, using: str = "default", **kwargs):
        super().__init__(rates, **kwargs)
        self.using = using
        # Looked up when a limiter is made, not when this module is imported: the module serves
        # processes that use Redis alone and need no app registry.
        self.buckets = apps.get_model("messaging", "RateLimitBucket").objects.using(using)
        self.grants = apps.get_model("messaging", "RateLimitGrant").objects.using(using)

    def _now(self) -> float:
        if self.clock is not None:
            return float(self.clock())
        connection = connections[self.using]
        if connection.vendor == "postgresql":
            # One clock for every machine; clock_timestamp() moves within a transaction.
            with connection.cursor() as cursor:
                cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8")
                return float(cursor.fetchone()[0])
        return time.time()

    def _lock(self, keys: Sequence[LimitKey]) -> dict[str, object]:
        names = sorted({key.name for key in keys})
        rows = self._select_locked(names)
        missing = [name for name in names if name not in rows]
        if missing:
            self.buckets.bulk_create(
                [self.buckets.model(key=name) for name in missing], ignore_conflicts=True
            )
            rows = self._select_locked(names)
        return rows

    def _select_locked(self, names: list[str]) -> dict[str, object]:
        query = self.buckets.select_for_update().filter(key__in=names).order_by("key")
        return {bucket.key: bucket for bucket in query}

    def _effective(self, key: LimitKey, bucket, now: float) -> Rate:
        observed_limit = observed_window = None
        if bucket.observed_at is not None and now - bucket.observed_at < OBSERVATION_TTL_SECONDS:
            observed_limit, observed_window = bucket.observed_limit, bucket.observed_window
        rate = effective_rate(self.rate(key), observed_limit, observed_window, self.maximum(key))
        return Rate(rate.limit, rate.window + self.margin_for(rate.window))

    def _window_grants(self, bucket, now: float, window: float):
        """Drop grants that left the window; the rest, oldest first."""
        grants = self.grants.filter(bucket=bucket)
        grants.filter(granted_at__lte=now - window).delete()
        return grants.order_by("granted_at")

    def try_acquire(self, keys: Sequence[LimitKey]) -> float:
        keys = self._distinct(keys)
        if not keys:
            return 0.0
        for key in keys:
            self.rate(key)
        with transaction.atomic(using=self.using):
            buckets = self._lock(keys)
            now = self._now()
            wait = 0.0
            for key in keys:
                bucket = buckets[key.name]
                rate = self._effective(key, bucket, now)
                if bucket.paused_until > now:
                    wait = max(wait, bucket.paused_until - now)
                grants = self._window_grants(bucket, now, rate.window)
                count = grants.count()
                if count >= rate.limit:
                    oldest = grants.values_list("granted_at", flat=True)[count - rate.limit]
                    wait = max(wait, oldest + rate.window - now)
            if wait > 0:
                return max(wait, MIN_WAIT_SECONDS)
            self.grants.bulk_create(
                [self.grants.model(bucket=buckets[key.name], granted_at=now) for key in keys]
            )
        return 0.0

    def pause(self, key: LimitKey, seconds: float | None = None) -> None:
        self.rate(key)
        seconds = self._pause_seconds(seconds)
        with transaction.atomic(using=self.using):
            bucket = self._lock([key])[key.name]
            ends = self._now() + seconds
            if ends > bucket.paused_until:
                bucket.paused_until = ends
                bucket.save(using=self.using, update_fields=["paused_until"])

    def observe(self, key: LimitKey, headers: Mapping[str, str]) -> None:
        self.rate(key)
        seen = parse_headers(headers)
        if seen == Observation(None, None, None):
            return
        with transaction.atomic(using=self.using):
            bucket = self._lock([key])[key.name]
            now = self._now()
            if seen.limit is not None or seen.window is not None:
                # What this response reports replaces what an earlier one did, as a pair.
                bucket.observed_limit = seen.limit
                bucket.observed_window = seen.window
                bucket.observed_at = now
                bucket.save(
                    using=self.using,
                    update_fields=["observed_limit", "observed_window", "observed_at"],
                )
            if seen.remaining is None:
                return
            effective = self._effective(key, bucket, now)
            used = (seen.limit if seen.limit is not None else effective.limit) - seen.remaining
            ours = self._window_grants(bucket, now, effective.window).count()
            unseen = min(used - ours, effective.limit)
            if unseen > 0:
                self.grants.bulk_create(
                    [self.grants.model(bucket=bucket, granted_at=now) for _ in range(unseen)]
                )

    def usage(self, key: LimitKey) -> int:
        bucket = self.buckets.filter(key=key.name).first()
        if bucket is None:
            return 0
        now = self._now()
        window = self._effective(key, bucket, now).window
        return self.grants.filter(bucket=bucket, granted_at__gt=now - window).count()

    def current_limit(self, key: LimitKey) -> int:
        bucket = self.buckets.filter(key=key.name).first()
        if bucket is None:
            return super().current_limit(key)
        return self._effective(key, bucket, self._now()).limit

    def usage_after(self, key: LimitKey, seconds: float) -> int:
        bucket = self.buckets.filter(key=key.name).first()
        if bucket is None:
            return 0
        now = self._now()
        window = self._effective(key, bucket, now).window
        return self.grants.filter(bucket=bucket, granted_at__gt=now - window + seconds).count()

    def cleanup(self, older_than: float = 3600.0) -> int:
        """Delete grants older than ``older_than`` seconds (each call prunes only its own keys)."""
        cutoff = self._now() - older_than
        deleted, _ = self.grants.filter(granted_at__lt=cutoff).delete()
        return deleted


# --- Choice of backend ----------------------------------------------------------------------


def get_limiter() -> RateLimiter:
    """The limiter for this deployment, built from settings (cheap: clients are pooled)."""
    if not settings.RINGCENTRAL_RATE_LIMITING:
        return NullRateLimiter()
    rates = configured_rates()
    url = settings.CELERY_BROKER_URL or ""
    if url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter(_redis_client(url), rates)
    return DatabaseRateLimiter(rates)
