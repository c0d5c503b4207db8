"""Helpers for tests that talk to a Marketo sandbox over real HTTP.

`start_sandbox` returns a running SandboxServer on a free port; stop it when
done, or use the `sandbox` fixture, which stops it after the test.
`SandboxApi` wraps `requests` with a token and the control endpoint.
"""

import pytest
import requests

from integrations.marketo.sandbox.server import SandboxServer

DEMO_CLIENT_ID = "docket-demo-client"
DEMO_CLIENT_SECRET = "docket-demo-secret"
DEMO_USER = "docket-api@corvane.example"


def start_sandbox(seed: dict | None = None, **options) -> SandboxServer:
    """Start a sandbox on 127.0.0.1 with a free port; `options` go to SandboxServer."""
    options.setdefault("port", 0)
    return SandboxServer(seed, **options).start()


class SandboxApi:
    """A minimal client for one sandbox and one API client."""

    def __init__(self, server: SandboxServer, client_id: str = DEMO_CLIENT_ID, client_secret: str = DEMO_CLIENT_SECRET):
        self.server = server
        self.client_id = client_id
        self.client_secret = client_secret
        self.session = requests.Session()
        self.token = None

    def fetch_token(self) -> requests.Response:
        return self.session.get(
            f"{self.server.url}/identity/oauth/token",
            params={"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret},
            timeout=10,
        )

    def authenticate(self) -> str:
        response = self.fetch_token()
        response.raise_for_status()
        self.token = response.json()["access_token"]
        return self.token

    def _headers(self, extra: dict | None = None) -> dict:
        if self.token is None:
            self.authenticate()
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, params=None, **kwargs) -> requests.Response:
        return self.session.get(self.server.url + path, params=params, headers=self._headers(kwargs.pop("headers", None)), timeout=10, **kwargs)

    def post_json(self, path: str, body, params=None) -> requests.Response:
        return self.session.post(self.server.url + path, params=params, json=body, headers=self._headers(), timeout=10)

    def post_form(self, path: str, data: dict, params=None) -> requests.Response:
        return self.session.post(self.server.url + path, params=params, data=data, headers=self._headers(), timeout=10)

    def post(self, path: str, params=None, **kwargs) -> requests.Response:
        return self.session.post(self.server.url + path, params=params, headers=self._headers(kwargs.pop("headers", None)), timeout=10, **kwargs)

    def control(self, operation: str, body: dict | None = None) -> dict:
        response = requests.post(f"{self.server.url}/_sandbox/{operation}", json=body or {}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def sandbox():
    server = start_sandbox()
    yield server
    server.stop()


@pytest.fixture
def api(sandbox):
    return SandboxApi(sandbox)


class FakeClock:
    """A settable clock (epoch seconds) for token expiry and quota-day tests."""

    def __init__(self, start: float = 1_780_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def demo_seed_with(**changes) -> dict:
    """Return the bundled demo seed with top-level keys replaced or extended."""
    from integrations.marketo.sandbox.seed import default_seed

    seed = default_seed()
    seed.update(changes)
    return seed
