"""Two real django-q2 worker processes share one Marketo instance's limits on PostgreSQL and Redis.

Three organizations are connected to one sandbox instance, so the two
workers flush different connections at the same time and only the shared
limiter in Redis keeps them within the instance's limits. The sandbox
allows 10 calls per 2 s and 1 call in flight, and each connection's limiter
allows 8 calls per 2 s and 1 in flight. The rate margin covers network
latency, which shifts when a call reaches the sandbox. A limiter kept per
process would allow up to 16 calls per window and one call in flight per
worker, which the sandbox rejects with 606 and 615.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection as db_connection

from agents.ingest import ingest_events
from agents.models import Organization
from agents.writeback_config import apply_config
from integrations.marketo.client import clear_token_cache
from integrations.marketo.connect import connect_marketo
from integrations.marketo.sandbox.server import SandboxServer
from integrations.models import MarketoConnection, WritebackRecord
from tests.factories import REPO, conversation_event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SANDBOX_CALLS, SANDBOX_WINDOW_SECONDS, SANDBOX_CONCURRENT = 10, 2, 1
LIMITER_CALLS, LIMITER_CONCURRENT = 8, 1
ORGANIZATIONS = 3
# Small requests make many small batches, so the workers ask for more calls than the limits allow.
REQUESTS_PER_ORGANIZATION = 34
EVENTS_PER_REQUEST = 3
SETTLE_TIMEOUT_SECONDS = 240
AGENT = "agt_p7k2m9x4q1ra"


def _production_profile_missing() -> str:
    reasons = []
    if db_connection.vendor != "postgresql":
        reasons.append("DATABASE_URL is not PostgreSQL")
    if not settings.REDIS_URL:
        reasons.append("REDIS_URL is not set")
    return " and ".join(reasons)


def _test_database_url() -> str:
    """Return a URL of the test database pytest-django created, for the worker processes."""
    database = db_connection.settings_dict
    credentials = quote(database["USER"] or "", safe="")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database["HOST"] or "127.0.0.1"
    port = database["PORT"] or "5432"
    return f"postgres://{credentials}@{host}:{port}/{database['NAME']}"


def _connect_organizations(sandbox) -> list[Organization]:
    document = json.loads((REPO / "demo" / "writeback-config.json").read_text())
    organizations = []
    for number in range(ORGANIZATIONS):
        organization = Organization(slug=f"workers-{number}", name=f"Workers {number}")
        organization.issue_ingest_token()
        organization.save()
        connect_marketo(
            organization,
            munchkin_id="417-QWE-902",
            client_id="docket-demo-client",
            client_secret="docket-demo-secret",
            base_url=sandbox.url,
        )
        apply_config(organization, document)
        organizations.append(organization)
    return organizations


def _start_workers(tmp_path, queue: str) -> list[tuple[subprocess.Popen, object]]:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.production.worker_settings",
        "DOCKET_TEST_QUEUE": queue,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "Q_WORKERS": "1",
        "WRITEBACK_BATCH_WINDOW_SECONDS": "0",
        "MARKETO_ALLOWED_BASE_URLS": ",".join(settings.MARKETO_ALLOWED_BASE_URLS),
        "LOG_LEVEL": "INFO",
    }
    workers = []
    for number in range(2):
        log = open(tmp_path / f"worker-{number}.log", "w", encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "qcluster"],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append((process, log))
    return workers


def _stop_workers(workers):
    for process, _ in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, log in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _wait_until_settled(deadline: float) -> int:
    open_statuses = [WritebackRecord.Status.PENDING, WritebackRecord.Status.IN_FLIGHT]
    while time.monotonic() < deadline:
        remaining = WritebackRecord.objects.filter(status__in=open_statuses).count()
        if remaining == 0:
            return 0
        time.sleep(1)
    return WritebackRecord.objects.filter(status__in=open_statuses).count()


def max_calls_in_window(starts: list[float], window: float) -> int:
    """Return the most calls that started within any `window` seconds, as the sandbox counts them."""
    starts = sorted(starts)
    maximum, first = 0, 0
    for last, started in enumerate(starts):
        while starts[first] <= started - window:
            first += 1
        maximum = max(maximum, last - first + 1)
    return maximum


def max_concurrent_calls(calls: list[dict]) -> int:
    """Return the most calls in flight at once; a call ending at the moment another starts doesn't overlap it."""
    moments = sorted(
        [(call["started_at"], 1) for call in calls] + [(call["finished_at"], -1) for call in calls],
        key=lambda moment: (moment[0], moment[1]),
    )
    running = maximum = 0
    for _, change in moments:
        running += change
        maximum = max(maximum, running)
    return maximum


@pytest.fixture
def sandbox():
    server = SandboxServer(port=0).start()
    yield server
    server.stop()
    clear_token_cache()


def test_two_workers_share_instance_limits(sandbox, settings, tmp_path, monkeypatch):
    missing = _production_profile_missing()
    if missing:
        pytest.skip(f"needs the production profile (PostgreSQL and Redis): {missing}")

    settings.MARKETO_ALLOWED_BASE_URLS = [sandbox.url]
    organizations = _connect_organizations(sandbox)

    # Setup ran within Marketo's own limits; from here on the low limits apply.
    MarketoConnection.objects.update(
        rate_limit_calls=LIMITER_CALLS,
        rate_limit_window_seconds=SANDBOX_WINDOW_SECONDS,
        max_concurrent_calls=LIMITER_CONCURRENT,
    )
    problems = sandbox.state.limits.update(
        {
            "rate_limit_calls": SANDBOX_CALLS,
            "rate_window_seconds": SANDBOX_WINDOW_SECONDS,
            "max_concurrent": SANDBOX_CONCURRENT,
        }
    )
    assert problems == []
    limits_from = time.time()

    # Flush tasks go to this test's own queue (see worker_settings.py).
    from django_q.conf import Conf

    queue = f"docket-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue)
    workers = _start_workers(tmp_path, queue)
    try:
        conversation_ids = []
        for request in range(REQUESTS_PER_ORGANIZATION):
            for number, organization in enumerate(organizations):
                events = []
                for position in range(EVENTS_PER_REQUEST):
                    key = f"{number}_{request}_{position}"
                    conversation_ids.append(f"conv_workers_{key}")
                    events.append(
                        conversation_event(
                            event_id=f"evt_workers_{key}",
                            conversation_id=f"conv_workers_{key}",
                            email=f"visitor{key}@workers.example",
                            agent_id=AGENT,
                        )
                    )
                report = ingest_events(organization, events)
                assert report.accepted == EVENTS_PER_REQUEST
            time.sleep(0.1)

        remaining = _wait_until_settled(time.monotonic() + SETTLE_TIMEOUT_SECONDS)
    finally:
        _stop_workers(workers)

    logs = [(tmp_path / f"worker-{number}.log").read_text(encoding="utf-8") for number in range(2)]
    state = sandbox.state.dump()
    calls = [call for call in state["call_log"] if call["started_at"] >= limits_from]
    answered = [call for call in calls if call["rejected_with"] is None]
    errors = Counter()
    for codes in state["usage"]["errors_by_day"].values():
        errors.update(codes)

    conversation_type = sandbox.state.activity_type("docketConversation")["id"]
    written = Counter(
        activity["primaryAttributeValue"]
        for activity in state["activities"]
        if activity["activityTypeId"] == conversation_type
    )
    statuses = Counter(WritebackRecord.objects.values_list("status", flat=True))

    assert remaining == 0, f"{remaining} records still open; worker logs in {tmp_path}"
    assert statuses == {WritebackRecord.Status.SUCCEEDED: statuses.total()}
    assert sorted(written) == sorted(conversation_ids)
    assert set(written.values()) == {1}
    assert all("writeback.flush.done" in log for log in logs), "each worker process flushed at least once"
    assert len(answered) > SANDBOX_CALLS
    assert [call for call in calls if call["rejected_with"]] == []
    assert errors["606"] == 0
    assert errors["615"] == 0
    assert max_calls_in_window([call["started_at"] for call in answered], SANDBOX_WINDOW_SECONDS) <= SANDBOX_CALLS
    assert max_concurrent_calls(answered) <= SANDBOX_CONCURRENT
