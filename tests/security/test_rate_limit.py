"""The webhook's per-organization rate limit, and with Redis its count shared across processes."""

import json
import os
import subprocess
import sys
import time

import pytest
from django.core.cache import caches

from tests.factories import REPO, conversation_event, make_organization

pytestmark = pytest.mark.django_db


def post(client, token, event_id: str):
    return client.post(
        "/api/v1/events",
        data=json.dumps(conversation_event(event_id=event_id, conversation_id=event_id)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.fixture
def same_minute():
    """Start at least 10 s before the rate-limit window (one wall-clock minute) ends."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.1)


def test_limit_per_organization(client, settings, same_minute):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 3
    busy, busy_token = make_organization("busy", "Busy")
    quiet, quiet_token = make_organization("quiet", "Quiet")
    # Earlier tests in this process may have counted requests for these ids.
    window = int(time.time() // 60)
    caches["default"].delete_many([f"ingest-rate:{org.pk}:{window}" for org in (busy, quiet)])

    allowed = [post(client, busy_token, f"e{index}").status_code for index in range(3)]
    limited = post(client, busy_token, "e3")
    other = post(client, quiet_token, "q0")

    assert allowed == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "Retry-After" in limited.json()["error"]
    assert other.status_code == 200


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the shared limit needs REDIS_URL")
def test_limit_shared_across_processes(client, settings, same_minute):
    from django.core.cache.backends.redis import RedisCache

    settings.INGEST_RATE_LIMIT_PER_MINUTE = 5
    organization, token = make_organization()
    caches["default"].delete(f"ingest-rate:{organization.pk}:{int(time.time() // 60)}")
    # Another web process takes the organization's whole allowance.
    script = (
        "import django\ndjango.setup()\n"
        "from types import SimpleNamespace\nfrom agents.api import _over_rate_limit\n"
        f"print([_over_rate_limit(SimpleNamespace(pk={organization.pk})) for _ in range(5)])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "INGEST_RATE_LIMIT_PER_MINUTE": "5"}
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )

    response = post(client, token, "e0")

    assert isinstance(caches["default"], RedisCache)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[0, 0, 0, 0, 0]"
    assert response.status_code == 429
