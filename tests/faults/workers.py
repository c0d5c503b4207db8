"""Worker processes that run the writeback against a database the test can also read.

Each `WorkerDatabase` is a fresh database of its own: a SQLite file, or a new
PostgreSQL database on the server in DATABASE_URL (dropped afterwards). The
processes run `manage.py` commands against it; the sandbox stays in the test
process, so the test can inspect every call Marketo would have received.
"""

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.factories import REPO

DEMO_CONFIG = REPO / "demo" / "writeback-config.json"
ORG_SLUG = "corvane"

# Short timings so that a killed worker's lease and in-flight batch lapse in
# seconds: lease = max(lease, read timeout + margin) = 5 s.
FAST_WORKER_ENV = {
    "WRITEBACK_BATCH_WINDOW_SECONDS": "0",
    "WRITEBACK_LEASE_SECONDS": "1",
    "WRITEBACK_LEASE_MARGIN_SECONDS": "1",
    "MARKETO_READ_TIMEOUT_SECONDS": "4",
    "WRITEBACK_IN_FLIGHT_TIMEOUT_SECONDS": "2",
    "MARKETO_BACKOFF_BASE_SECONDS": "0.01",
    "MARKETO_BACKOFF_MAX_SECONDS": "0.05",
}

# Run inside a worker process: set up the organization, connect it to the
# sandbox and ingest the events file. Arguments: sandbox URL, events path.
_PREPARE = """
import json, sys
from django.core.management import call_command
from agents.ingest import ingest_events
from agents.models import Organization
from agents.writeback_config import apply_config
from integrations.marketo.connect import connect_marketo

call_command("migrate", verbosity=0)
organization = Organization(slug=sys.argv[1], name="Corvane")
organization.issue_ingest_token()
organization.save()
result = connect_marketo(organization, munchkin_id="417-QWE-902", client_id="docket-demo-client",
                         client_secret="docket-demo-secret", base_url=sys.argv[2])
apply_config(organization, json.loads(open(sys.argv[3]).read()))
report = ingest_events(organization, json.loads(open(sys.argv[4]).read()))
print(json.dumps({"accepted": report.accepted, "rejected": report.rejected}))
"""

# Prints the writeback records and batches as JSON.
_SNAPSHOT = """
import json
from integrations.models import WritebackBatch, WritebackRecord
records = list(WritebackRecord.objects.values("action", "status", "dedupe_key", "last_error"))
batches = list(WritebackBatch.objects.values("action", "status"))
print(json.dumps({"records": records, "batches": batches}))
"""


class WorkerDatabase:
    """A database for worker processes, with helpers to run `manage.py` against it."""

    def __init__(self, directory: Path, sandbox_url: str):
        self.directory = directory
        self.sandbox_url = sandbox_url
        self._postgres_admin_url = None
        server_url = os.environ.get("DATABASE_URL", "")
        if server_url.startswith(("postgres://", "postgresql://")):
            self.name = f"docket_worker_{uuid.uuid4().hex[:12]}"
            # The maintenance database exists on every server; the one named
            # in DATABASE_URL may not (pytest-django creates test_<name>).
            self._postgres_admin_url = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
            self._postgres("CREATE DATABASE {}")
            self.url = urlunsplit(urlsplit(server_url)._replace(path=f"/{self.name}"))
        else:
            self.name = str(directory / "worker.sqlite3")
            self.url = f"sqlite:///{self.name}"

    def _postgres(self, statement: str):
        import psycopg

        with psycopg.connect(self._postgres_admin_url, autocommit=True) as connection:
            connection.execute(statement.format(self.name))

    def drop(self):
        if self._postgres_admin_url:
            self._postgres("DROP DATABASE IF EXISTS {} WITH (FORCE)")

    def env(self, **extra) -> dict:
        env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
        # Without REDIS_URL the workers use the ORM broker in their own
        # database, so no task of theirs reaches a Redis queue that other
        # processes on this machine consume.
        env.update(FAST_WORKER_ENV)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings",
                "DATABASE_URL": self.url,
                "MARKETO_ALLOWED_BASE_URLS": self.sandbox_url,
                "PYTHONPATH": str(REPO),
            }
        )
        env.update(extra)
        return env

    def python(self, code: str, *args: str, timeout: float = 60, **env) -> str:
        """Run `code` in a Django-configured process and return its output."""
        script = "import django\ndjango.setup()\n" + code
        completed = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=REPO, env=self.env(**env), capture_output=True, text=True, timeout=timeout,
        )
        assert completed.returncode == 0, f"worker script failed:\n{completed.stderr[-3000:]}"
        return completed.stdout

    def prepare(self, events: list[dict]) -> dict:
        """Migrate, create and connect the organization, apply the demo config and ingest `events`."""
        events_path = self.directory / "events.json"
        events_path.write_text(json.dumps(events), encoding="utf-8")
        output = self.python(_PREPARE, ORG_SLUG, self.sandbox_url, str(DEMO_CONFIG), str(events_path))
        return json.loads(output.strip().splitlines()[-1])

    def start_drain(self, timeout_seconds: float = 60, **env) -> subprocess.Popen:
        command = [sys.executable, "manage.py", "drain_writeback", "--org", ORG_SLUG, "--timeout", str(timeout_seconds)]
        return subprocess.Popen(
            command, cwd=REPO, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run_drain(self, timeout_seconds: float = 60, **env) -> str:
        process = self.start_drain(timeout_seconds, **env)
        stdout, stderr = process.communicate(timeout=timeout_seconds + 30)
        assert process.returncode == 0, f"drain_writeback failed:\n{stderr[-3000:]}"
        return stdout

    def snapshot(self) -> dict:
        return json.loads(self.python(_SNAPSHOT).strip().splitlines()[-1])


def kill(process: subprocess.Popen):
    """SIGKILL a worker: no handler, no cleanup, no outcome recorded."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def written_count(drain_output: str, action: str) -> int:
    """Return how many `action` writes a drain_writeback output reports (0 when none)."""
    line = next((line for line in drain_output.splitlines() if line.startswith("written:")), "")
    match = re.search(rf"\b{action} (\d+)", line)
    return int(match.group(1)) if match else 0
