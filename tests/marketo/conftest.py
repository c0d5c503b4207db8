"""Fixtures for the Marketo client, rate limiter and quota tests."""

import pytest

from integrations.marketo.client import MarketoClient, clear_token_cache

BASE_URL = "https://123-ABC-456.mktorest.com"
CLIENT_ID = "docket-client-id-0001"
CLIENT_SECRET = "s3cr3t-client-secret-value"
TOKEN = "5c1d9e0a-7b2f-4e53-9d1c-2f7a11c0b9e4:ab"
IDENTITY_URL = f"{BASE_URL}/identity/oauth/token"


class FakeClock:
    """A monotonic clock and sleep pair: sleeping advances the clock and is recorded."""

    def __init__(self, start: float = 1_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingLimiter:
    """A limiter that lets every call through and counts the slots taken."""

    def __init__(self):
        self.slots = 0
        self.active = 0

    def slot(self):
        limiter = self

        class _Slot:
            def __enter__(self):
                limiter.slots += 1
                limiter.active += 1

            def __exit__(self, *exc):
                limiter.active -= 1

        return _Slot()


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def usage():
    calls = []

    def record(path, code, counted):
        calls.append((path, code, counted))

    record.calls = calls
    return record


@pytest.fixture
def limiter():
    return RecordingLimiter()


@pytest.fixture
def make_client(clock, usage, limiter):
    def build(**overrides):
        options = {
            "limiter": limiter,
            "usage_recorder": usage,
            "max_attempts": 3,
            "backoff_base": 1.0,
            "backoff_max": 8.0,
            "rate_limit_wait": 20.0,
            "sleep": clock.sleep,
            "monotonic": clock,
            "random": lambda: 0.5,
        }
        options.update(overrides)
        return MarketoClient(BASE_URL, CLIENT_ID, CLIENT_SECRET, **options)

    return build


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def marketo(requests_mock):
    """requests-mock with the identity endpoint returning a fresh token."""
    requests_mock.get(
        IDENTITY_URL,
        json={"access_token": TOKEN, "token_type": "bearer", "expires_in": 3599, "scope": "docket@example.com"},
    )
    return requests_mock


@pytest.fixture
def connection(db):
    from agents.models import Organization
    from integrations.models import MarketoConnection

    organization = Organization.objects.create(slug="acme", name="Acme", ingest_token_hash="hash-acme")
    marketo_connection = MarketoConnection(organization=organization, munchkin_id="123-ABC-456", client_id=CLIENT_ID)
    marketo_connection.set_client_secret(CLIENT_SECRET)
    marketo_connection.save()
    return marketo_connection
