"""Sign-in lockout after repeated failures."""

import pytest
from django.core.cache import cache

from tests.web.helpers import PASSWORD, make_org, make_org_admin

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def test_lockout_after_failures(client, settings):
    settings.SIGN_IN_MAX_FAILURES = 3
    make_org_admin(make_org("acme"), "admin@acme.example")
    for _ in range(3):
        client.post("/login/", {"username": "admin@acme.example", "password": "wrong"})

    response = client.post("/login/", {"username": "admin@acme.example", "password": PASSWORD})

    assert response.status_code == 200
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_in_below_limit(client, settings):
    settings.SIGN_IN_MAX_FAILURES = 3
    make_org_admin(make_org("acme"), "admin@acme.example")
    client.post("/login/", {"username": "admin@acme.example", "password": "wrong"})

    response = client.post("/login/", {"username": "admin@acme.example", "password": PASSWORD})

    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_failures_counted_in_database_without_redis(client, settings):
    # Without Redis every web process reads the same table, so the lockout
    # holds across processes. With REDIS_URL the cache is Redis instead.
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    from integrations.models import SharedCacheEntry

    if settings.REDIS_URL:
        pytest.skip("with REDIS_URL the default cache is Redis")
    assert isinstance(caches["default"], DatabaseCache)
    make_org_admin(make_org("acme"), "admin@acme.example")

    client.post("/login/", {"username": "admin@acme.example", "password": "wrong"})

    [entry] = SharedCacheEntry.objects.filter(cache_key__contains="sign-in-failures")
    assert entry.cache_key.endswith(":admin@acme.example")
