"""The shared rate limiter: window, in-flight limit, leases, on both backends."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection as db_connection

from integrations.marketo.ratelimit import (
    DatabaseRateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)
from integrations.models import RateLimitSlot

from .conftest import FakeClock

REDIS_URL = os.environ.get("REDIS_URL", "")
EPOCH = 1_780_000_000.0


@pytest.fixture
def redis_client():
    if not REDIS_URL:
        pytest.skip("REDIS_URL is not set; set it (e.g. redis://127.0.0.1:6379/0) to test the Redis limiter.")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for key in client.scan_iter(f"{RedisRateLimiter.KEY_PREFIX}:test-*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["database", "redis"])
def make_limiter(request):
    """Build limiters of one backend for a fresh instance key; limiters built together share state."""
    instance_key = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "database":
        request.getfixturevalue("transactional_db")
        if "threads" in request.node.name and db_connection.vendor == "sqlite" and db_connection.is_in_memory_db():
            pytest.skip(
                "The in-memory SQLite test database (shared cache) fails concurrent writers at once; "
                "test_database_limiter_across_processes covers SQLite, and DATABASE_URL=postgres://... runs this."
            )

        def build(**options):
            return DatabaseRateLimiter(instance_key, **options)
    else:
        redis_client = request.getfixturevalue("redis_client")

        def build(**options):
            return RedisRateLimiter(instance_key, redis_client, **options)

    return build


def close_thread_connection(limiter):
    # Each thread opens its own database connection; close it before the test ends.
    if isinstance(limiter, DatabaseRateLimiter):
        db_connection.close()


def test_window_makes_next_call_wait(make_limiter):
    clock = FakeClock(EPOCH)
    limiter = make_limiter(calls=3, window_seconds=20, max_concurrent=5, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        clock.now += 1
        with limiter.slot():
            pass
    assert clock.sleeps == []

    with limiter.slot():
        pass

    # The first call started at EPOCH + 1 and leaves the window at EPOCH + 21.
    assert clock.now == pytest.approx(EPOCH + 21, abs=0.05)
    assert sum(clock.sleeps) == pytest.approx(18, abs=0.05)


def test_window_slides(make_limiter):
    clock = FakeClock(EPOCH)
    limiter = make_limiter(calls=2, window_seconds=20, max_concurrent=5, clock=clock, sleep=clock.sleep)

    with limiter.slot():
        pass
    clock.now += 15
    with limiter.slot():
        pass
    clock.now += 6

    # The first call left the window at +20; the second still counts.
    with limiter.slot():
        pass
    assert clock.sleeps == []


def test_in_flight_limit_blocks_until_release(make_limiter):
    clock = FakeClock(EPOCH)
    limiter = make_limiter(calls=50, window_seconds=20, max_concurrent=2, lease_seconds=120, clock=clock)

    first = limiter.acquire()
    limiter.acquire()
    slot_id, wait = limiter._try_acquire(clock())

    assert slot_id is None
    assert 0 < wait <= 0.25

    limiter.release(first)
    slot_id, wait = limiter._try_acquire(clock())
    assert slot_id is not None


def test_expired_lease_frees_slot(make_limiter):
    clock = FakeClock(EPOCH)
    limiter = make_limiter(calls=50, window_seconds=20, max_concurrent=1, lease_seconds=30, clock=clock,
                           sleep=clock.sleep)

    # A process takes the only slot and dies without releasing it.
    limiter.acquire()
    clock.now += 29
    assert limiter._try_acquire(clock())[0] is None

    clock.now += 2
    assert limiter._try_acquire(clock())[0] is not None


def test_in_flight_limit_holds_across_threads(make_limiter):
    limiters = [make_limiter(calls=100, window_seconds=20, max_concurrent=2) for _ in range(6)]
    active = 0
    peak = 0
    lock = threading.Lock()
    failures = []

    def work(limiter):
        nonlocal active, peak
        try:
            for _ in range(2):
                with limiter.slot():
                    with lock:
                        active += 1
                        peak = max(peak, active)
                    time.sleep(0.05)
                    with lock:
                        active -= 1
        except Exception as error:  # a thread's exception would otherwise vanish
            failures.append(error)
        finally:
            close_thread_connection(limiter)

    threads = [threading.Thread(target=work, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert failures == []
    assert peak == 2


def test_window_holds_across_threads(make_limiter):
    clock_start = time.time()
    limiters = [make_limiter(calls=4, window_seconds=1, max_concurrent=10) for _ in range(3)]
    starts = []
    lock = threading.Lock()

    def work(limiter):
        try:
            for _ in range(2):
                with limiter.slot():
                    with lock:
                        starts.append(time.time())
        finally:
            close_thread_connection(limiter)

    threads = [threading.Thread(target=work, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Six calls with four allowed per second: the fifth starts a second after the first.
    starts.sort()
    assert len(starts) == 6
    assert starts[3] - clock_start < 1
    assert starts[4] - starts[0] >= 0.95


def test_database_limiter_deletes_old_slots(transactional_db):
    clock = FakeClock(EPOCH)
    limiter = DatabaseRateLimiter("test-cleanup", calls=50, window_seconds=20, max_concurrent=5, clock=clock)

    for _ in range(3):
        with limiter.slot():
            pass
    clock.now += 21
    with limiter.slot():
        pass

    assert RateLimitSlot.objects.filter(instance_key="test-cleanup").count() == 1


def test_invalid_limits_rejected():
    with pytest.raises(ValueError, match="calls=0"):
        DatabaseRateLimiter("test-invalid", calls=0)


def test_build_uses_database_without_redis(connection, settings):
    settings.REDIS_URL = ""
    connection.rate_limit_calls = 80
    connection.max_concurrent_calls = 8

    limiter = build_rate_limiter(connection)

    assert isinstance(limiter, DatabaseRateLimiter)
    assert limiter.instance_key == "123-ABC-456"
    assert (limiter.calls, limiter.window_seconds, limiter.max_concurrent) == (80, 20.0, 8)


def test_build_uses_redis_when_configured(connection, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"

    limiter = build_rate_limiter(connection)

    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.starts_key == "docket:marketo:ratelimit:123-ABC-456:starts"


_WORKER = """
import json, sys, time
import django
django.setup()
from integrations.marketo.ratelimit import DatabaseRateLimiter
limiter = DatabaseRateLimiter("test-processes", calls=100, window_seconds=20, max_concurrent=2)
spans = []
for _ in range(3):
    with limiter.slot():
        started = time.time()
        time.sleep(0.1)
        spans.append((started, time.time()))
print(json.dumps(spans))
"""


@pytest.mark.slow
def test_database_limiter_across_processes(tmp_path):
    environment = {
        **os.environ,
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'limiter.sqlite3'}",
        "REDIS_URL": "",
    }
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=root, env=environment, check=True
    )

    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER], cwd=root, env=environment, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    spans = []
    for worker in workers:
        output, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        spans.extend(json.loads(output))

    # The maximum of calls in flight at any start time, across all four processes.
    peak = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert len(spans) == 12
    assert peak == 2
