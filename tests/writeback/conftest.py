"""A connected organization against a live sandbox, for writeback tests over real HTTP."""

import json

import pytest

from agents.writeback_config import apply_config
from integrations.marketo.client import clear_token_cache
from integrations.marketo.connect import connect_marketo
from integrations.marketo.sandbox.server import SandboxServer
from tests.factories import REPO, make_organization

DEMO_CONFIG = REPO / "demo" / "writeback-config.json"


@pytest.fixture
def sandbox():
    server = SandboxServer(port=0)
    server.start()
    yield server
    server.stop()
    clear_token_cache()


@pytest.fixture
def fast_writeback(settings):
    settings.WRITEBACK_BATCH_WINDOW_SECONDS = 0
    settings.MARKETO_BACKOFF_BASE_SECONDS = 0.01
    settings.MARKETO_BACKOFF_MAX_SECONDS = 0.05
    settings.MARKETO_RATE_LIMIT_WAIT_SECONDS = 0.05
    settings.WRITEBACK_MEETING_WAIT_SECONDS = 120
    return settings


@pytest.fixture
def connected(db, sandbox, fast_writeback):
    """An organization connected to the sandbox with the demo's agent configuration."""
    fast_writeback.MARKETO_ALLOWED_BASE_URLS = [sandbox.url]
    organization, token = make_organization("corvane", "Corvane")
    connect_marketo(
        organization,
        munchkin_id="417-QWE-902",
        client_id="docket-demo-client",
        client_secret="docket-demo-secret",
        base_url=sandbox.url,
    )
    apply_config(organization, json.loads(DEMO_CONFIG.read_text()))
    organization.refresh_from_db()
    organization.token = token
    return organization
