"""Fixtures of the fault tests: the writeback tests' sandbox and connected organization."""

import pytest

from tests.faults.workers import WorkerDatabase
from tests.writeback.conftest import connected, fast_writeback, sandbox  # noqa: F401


@pytest.fixture
def worker_db(tmp_path, sandbox):  # noqa: F811
    """A database of its own for worker processes, connected to the sandbox."""
    database = WorkerDatabase(tmp_path, sandbox.url)
    yield database
    database.drop()
