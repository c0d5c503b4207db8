"""Fixtures for enrollment tests: the sandbox-backed connection and the fake OpenAI server."""

from tests.enrollment.fake_openai import fake_openai  # noqa: F401
from tests.writeback.conftest import connected, fast_writeback, sandbox  # noqa: F401
