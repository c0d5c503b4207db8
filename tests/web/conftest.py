"""Fixtures of the web tests: a Marketo sandbox on loopback that connections may use."""

import pytest

from integrations.marketo.sandbox.server import SandboxServer


@pytest.fixture
def marketo_sandbox(settings):
    server = SandboxServer(seed=None, port=0)
    server.start()
    settings.MARKETO_ALLOWED_BASE_URLS = [server.url]
    yield server
    server.stop()
