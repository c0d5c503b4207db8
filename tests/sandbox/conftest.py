from tests.sandbox.fixtures import api, sandbox  # noqa: F401  (pytest fixtures)
