"""One rate limiter per Marketo instance, shared by every worker process.

Marketo allows 100 calls per sliding 20-second window and 10 calls in flight
per instance, shared with every other integration on it; Adobe recommends
that one integration stay within 50 calls per 20 s and 5 in flight. A call
may start only when fewer than `calls` calls started in the last
`window_seconds` and fewer than `max_concurrent` calls are in flight.

Each in-flight slot carries a lease, so a process killed mid-call frees its
slot when the lease expires. State lives in Redis when REDIS_URL is set and
in the database otherwise, so that every worker process reads the same counts.
"""

import logging
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, transaction
from django.db import connection as db_connection

logger = logging.getLogger(__name__)

DEFAULT_CALLS = 50
DEFAULT_WINDOW_SECONDS = 20
DEFAULT_MAX_CONCURRENT = 5

# Maximum wait between two checks while the in-flight limit is full: slots
# are freed by other processes, which can't wake this one.
POLL_SECONDS = 0.25
# Shortest wait, so a rounding error never turns the loop into a busy loop.
MIN_WAIT_SECONDS = 0.01


def default_lease_seconds() -> float:
    """Lease of an in-flight slot: longer than one call's connect and read timeouts."""
    connect = getattr(settings, "MARKETO_CONNECT_TIMEOUT_SECONDS", 5.0)
    read = getattr(settings, "MARKETO_READ_TIMEOUT_SECONDS", 100.0)
    return connect + read + 15.0


class RateLimiter:
    """Blocks each call until the instance's window and in-flight limits allow it to start.

    Subclasses implement `_try_acquire`, which either records a new slot and
    returns its id, or returns how long to wait before trying again.
    """

    def __init__(
        self,
        instance_key: str,
        *,
        calls: int = DEFAULT_CALLS,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        lease_seconds: float | None = None,
        clock=time.time,
        sleep=time.sleep,
    ):
        if calls < 1 or max_concurrent < 1 or window_seconds <= 0:
            raise ValueError(
                f"Invalid rate limit for {instance_key}: calls={calls}, window_seconds="
                f"{window_seconds}, max_concurrent={max_concurrent}. All must be positive."
            )
        self.instance_key = instance_key
        self.calls = calls
        self.window_seconds = float(window_seconds)
        self.max_concurrent = max_concurrent
        self.lease_seconds = float(lease_seconds if lease_seconds is not None else default_lease_seconds())
        self.clock = clock
        self.sleep = sleep

    @contextmanager
    def slot(self):
        """Wait until a call may start, hold an in-flight slot for the block, then free it."""
        slot_id = self.acquire()
        try:
            yield slot_id
        finally:
            self.release(slot_id)

    def acquire(self) -> str:
        """Wait (without a time limit) until a slot is free, take it and return its id."""
        waited = 0.0
        while True:
            slot_id, wait = self._try_acquire(self.clock())
            if slot_id is not None:
                if waited:
                    logger.debug(
                        "Marketo rate limiter for %s waited %.2f s for a slot", self.instance_key, waited
                    )
                return slot_id

            wait = max(MIN_WAIT_SECONDS, wait)
            self.sleep(wait)
            waited += wait

    def release(self, slot_id: str) -> None:
        raise NotImplementedError

    def _try_acquire(self, now: float) -> tuple[str | None, float]:
        raise NotImplementedError


class DatabaseRateLimiter(RateLimiter):
    """Rate limiter on RateLimitSlot rows, serialized per instance by its RateLimitLock row.

    On PostgreSQL `select_for_update` on the lock row makes concurrent
    acquisitions for one instance take turns. On SQLite the row lock is a
    no-op, but every transaction there starts with the database write lock
    (settings use transaction_mode IMMEDIATE), which serializes them too.
    """

    def _try_acquire(self, now: float) -> tuple[str | None, float]:
        try:
            return self._try_acquire_locked(now)
        except OperationalError as error:
            # SQLite reports a writer holding the database as "database is
            # locked" once its busy timeout runs out, and at once as "database
            # table is locked" in shared-cache mode (the in-memory test
            # database). Either way another process holds the lock: wait.
            if db_connection.vendor != "sqlite" or "locked" not in str(error) or db_connection.in_atomic_block:
                raise
            # A failed BEGIN can leave the connection inside a transaction
            # that holds the lock; a new connection starts clean.
            db_connection.close()
            logger.debug("Marketo rate limiter for %s found SQLite locked; waiting", self.instance_key)
            return None, POLL_SECONDS

    def _try_acquire_locked(self, now: float) -> tuple[str | None, float]:
        from integrations.models import RateLimitLock, RateLimitSlot

        # Create the lock row outside the locking transaction: two processes
        # creating it at once would otherwise fail on the unique constraint.
        RateLimitLock.objects.get_or_create(instance_key=self.instance_key)

        now_at = _as_datetime(now)
        window_start = now_at - timedelta(seconds=self.window_seconds)

        with transaction.atomic():
            RateLimitLock.objects.select_for_update().get(instance_key=self.instance_key)
            slots = RateLimitSlot.objects.filter(instance_key=self.instance_key)

            # Slots outside the window whose call has ended (or whose lease ran
            # out) no longer limit anything.
            slots.filter(started_at__lt=window_start, finished_at__isnull=False).delete()
            slots.filter(started_at__lt=window_start, lease_expires_at__lte=now_at).delete()

            in_window = slots.filter(started_at__gte=window_start)
            in_flight = slots.filter(finished_at__isnull=True, lease_expires_at__gt=now_at)
            started_count = in_window.count()
            in_flight_count = in_flight.count()

            if started_count < self.calls and in_flight_count < self.max_concurrent:
                slot = RateLimitSlot.objects.create(
                    instance_key=self.instance_key,
                    started_at=now_at,
                    lease_expires_at=now_at + timedelta(seconds=self.lease_seconds),
                )
                return str(slot.pk), 0.0

            wait = 0.0
            if started_count >= self.calls:
                # The window frees a call when its oldest start leaves it.
                oldest = in_window.order_by("started_at").values_list("started_at", flat=True).first()
                wait = (oldest - window_start).total_seconds()
            if in_flight_count >= self.max_concurrent:
                earliest = in_flight.order_by("lease_expires_at").values_list("lease_expires_at", flat=True).first()
                wait = max(wait, min(POLL_SECONDS, (earliest - now_at).total_seconds()))
            return None, wait

    def release(self, slot_id: str) -> None:
        from integrations.models import RateLimitSlot

        RateLimitSlot.objects.filter(pk=int(slot_id), finished_at__isnull=True).update(
            finished_at=_as_datetime(self.clock())
        )


# Atomic check-and-take on two sorted sets: call starts scored by start time,
# and in-flight leases scored by lease expiry. Returns {1, ""} when the slot
# was taken, else {0, seconds_to_wait} (as a string, because Redis truncates
# Lua numbers to integers).
_ACQUIRE_SCRIPT = """
local starts, leases = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local calls = tonumber(ARGV[3])
local max_concurrent = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local member = ARGV[6]
local poll = tonumber(ARGV[7])

redis.call('ZREMRANGEBYSCORE', starts, '-inf', '(' .. (now - window))
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
local started = redis.call('ZCARD', starts)
local running = redis.call('ZCARD', leases)

if started < calls and running < max_concurrent then
  redis.call('ZADD', starts, now, member)
  redis.call('ZADD', leases, now + lease, member)
  local ttl = math.ceil((window + lease) * 1000)
  redis.call('PEXPIRE', starts, ttl)
  redis.call('PEXPIRE', leases, ttl)
  return {1, ''}
end

local wait = 0
if started >= calls then
  local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
if running >= max_concurrent then
  local earliest = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
  wait = math.max(wait, math.min(poll, tonumber(earliest[2]) - now))
end
return {0, tostring(wait)}
"""


class RedisRateLimiter(RateLimiter):
    """Rate limiter on two Redis sorted sets per instance, changed by one Lua script.

    NOTE: times come from each worker's clock, so hosts sharing one Redis
    need synchronized clocks (NTP). A skew of s seconds shifts the window by s.
    """

    KEY_PREFIX = "docket:marketo:ratelimit"

    def __init__(self, instance_key: str, redis_client, **options):
        super().__init__(instance_key, **options)
        self.redis = redis_client
        self._script = redis_client.register_script(_ACQUIRE_SCRIPT)
        self.starts_key = f"{self.KEY_PREFIX}:{instance_key}:starts"
        self.leases_key = f"{self.KEY_PREFIX}:{instance_key}:leases"

    def _try_acquire(self, now: float) -> tuple[str | None, float]:
        member = uuid.uuid4().hex
        taken, wait = self._script(
            keys=[self.starts_key, self.leases_key],
            args=[
                repr(now), repr(self.window_seconds), self.calls, self.max_concurrent,
                repr(self.lease_seconds), member, repr(POLL_SECONDS),
            ],
        )
        if int(taken) == 1:
            return member, 0.0
        return None, float(wait)

    def release(self, slot_id: str) -> None:
        # The start stays in `starts`, because the window counts calls started.
        self.redis.zrem(self.leases_key, slot_id)


_redis_clients: dict[str, object] = {}
_redis_clients_lock = threading.Lock()


def _redis_client(url: str):
    """Return one Redis client (and so one connection pool) per URL for the process."""
    import redis

    with _redis_clients_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url)
            _redis_clients[url] = client
        return client


def build_rate_limiter(connection, **options) -> RateLimiter:
    """Build the limiter for `connection`'s Marketo instance: Redis when REDIS_URL is set, else the database."""
    limits = {
        "calls": connection.rate_limit_calls or DEFAULT_CALLS,
        "window_seconds": connection.rate_limit_window_seconds or DEFAULT_WINDOW_SECONDS,
        "max_concurrent": connection.max_concurrent_calls or DEFAULT_MAX_CONCURRENT,
    }
    limits.update(options)

    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url:
        return RedisRateLimiter(connection.instance_key, _redis_client(redis_url), **limits)
    return DatabaseRateLimiter(connection.instance_key, **limits)


def _as_datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
