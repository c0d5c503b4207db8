"""Fixtures of the production-profile tests: the writeback tests' sandbox and connected organization."""

from tests.writeback.conftest import connected, fast_writeback, sandbox  # noqa: F401
