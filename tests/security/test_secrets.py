"""Secrets: ingest tokens hashed and rotatable, client secrets re-encryptable, none of them in logs or task rows."""

import hmac
import io
import json
import logging
import re

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection as db_connection

from agents.models import Organization, hash_ingest_token
from integrations.marketo.sandbox.server import SandboxServer
from integrations.models import AuditLogEntry, MarketoConnection
from integrations.writeback.drain import drain
from tests.factories import conversation_event, make_organization, sample_events

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_SECRET = "docket-demo-secret"


def post(client, token, body):
    return client.post(
        "/api/v1/events", data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def all_database_text() -> str:
    """Return every text value of every table, to search for a secret stored in plain text."""
    chunks = []
    with db_connection.cursor() as cursor:
        for table in db_connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {db_connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                chunks.extend(str(value) for value in row if value is not None)
    return "\n".join(chunks)


def test_ingest_token_stored_hashed():
    organization, token = make_organization()

    stored = Organization.objects.get(pk=organization.pk)
    assert stored.ingest_token_hash == hash_ingest_token(token)
    assert token not in all_database_text()


def test_ingest_token_compared_in_constant_time(client, monkeypatch):
    organization, token = make_organization()
    calls = []
    real = hmac.compare_digest

    def spy(left, right):
        calls.append((left, right))
        return real(left, right)

    monkeypatch.setattr(hmac, "compare_digest", spy)

    response = post(client, token, conversation_event())

    assert response.status_code == 200
    assert calls == [(organization.ingest_token_hash, hash_ingest_token(token))]


def test_rotate_ingest_token(client):
    organization, old_token = make_organization()
    output = io.StringIO()

    call_command("rotate_ingest_token", "--org", organization.slug, stdout=output)

    new_token = output.getvalue().strip().splitlines()[-1]
    organization.refresh_from_db()
    assert new_token.startswith("dkt_")
    assert new_token != old_token
    assert organization.ingest_token_rotated_at is not None
    assert post(client, old_token, conversation_event(event_id="e1")).status_code == 401
    assert post(client, new_token, conversation_event(event_id="e2")).status_code == 200
    entry = AuditLogEntry.objects.get(action="rotate_ingest_token")
    assert new_token not in json.dumps(entry.changes)


def test_rotate_unknown_org_fails():
    with pytest.raises(CommandError, match="'nope' not found"):
        call_command("rotate_ingest_token", "--org", "nope", stdout=io.StringIO())


def test_reencrypt_secrets_after_key_rotation(settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    organization, _ = make_organization()
    connection = MarketoConnection(organization=organization, munchkin_id="417-QWE-902", client_id="id")
    connection.set_client_secret(CLIENT_SECRET)
    connection.save()
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    output = io.StringIO()
    call_command("reencrypt_secrets", stdout=output)

    connection.refresh_from_db()
    assert "Re-encrypted 1 client secrets" in output.getvalue()
    assert Fernet(new_key.encode()).decrypt(connection.client_secret_encrypted.encode()).decode() == CLIENT_SECRET
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert connection.get_client_secret() == CLIENT_SECRET


def test_reencrypt_without_old_key_changes_nothing(settings):
    organization, _ = make_organization()
    connection = MarketoConnection(organization=organization, munchkin_id="417-QWE-902", client_id="id")
    connection.set_client_secret(CLIENT_SECRET)
    connection.save()
    before = connection.client_secret_encrypted
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(CommandError, match="acme"):
        call_command("reencrypt_secrets", stdout=io.StringIO())

    connection.refresh_from_db()
    assert connection.client_secret_encrypted == before


class _Collector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))
        if record.exc_text:
            self.lines.append(record.exc_text)


@pytest.fixture
def every_log_record():
    """Collect every record of every logger at DEBUG, urllib3's request lines included."""
    collector = _Collector()
    collector.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    names = ["", "urllib3", "urllib3.connectionpool", "django_q", "django-q", "integrations.marketo.sandbox", "django"]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(collector)
    yield collector
    logging.getLogger().removeHandler(collector)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_in_logs_tasks_or_exports(client, settings, every_log_record):
    from django_q.models import Failure, OrmQ, Task
    from django_q.tasks import async_task

    from integrations.marketo.connect import connect_marketo
    from agents.writeback_config import apply_config
    from tests.writeback.conftest import DEMO_CONFIG

    sandbox = SandboxServer(port=0, access_log=True).start()
    try:
        settings.MARKETO_ALLOWED_BASE_URLS = [sandbox.url]
        settings.WRITEBACK_BATCH_WINDOW_SECONDS = 0
        organization, ingest_token = make_organization("corvane", "Corvane")
        connect_marketo(
            organization, munchkin_id="417-QWE-902", client_id="docket-demo-client",
            client_secret=CLIENT_SECRET, base_url=sandbox.url,
        )
        apply_config(organization, json.loads(DEMO_CONFIG.read_text()))
        sandbox.state.faults.add({"path": "/rest/v1/activities/external.json", "mode": "drop_after_apply"})
        post(client, ingest_token, {"events": sample_events()})
        # A flush as the worker runs it, so django-q2 stores its Task row.
        async_task("integrations.writeback.tasks.flush_connection_task",
                   MarketoConnection.objects.get().pk, sync=True)
        drain(organization, timeout_seconds=60)
        call_command("export_writeback_config", "--org", "corvane", stdout=(exported := io.StringIO()))
        access_tokens = list(sandbox.state.tokens)
    finally:
        sandbox.stop()

    secrets = {"client secret": CLIENT_SECRET, "ingest token": ingest_token}
    secrets.update({f"access token {index}": token for index, token in enumerate(access_tokens)})
    logs = "\n".join(every_log_record.lines)
    task_rows = "\n".join(
        repr((row.func, row.args, row.kwargs, row.result)) for row in [*Task.objects.all(), *Failure.objects.all()]
    ) + "\n".join(repr(row.func()) for row in OrmQ.objects.all())

    assert access_tokens
    assert "Marketo POST /rest/v1/leads.json" in logs
    assert "/identity/oauth/token" in logs
    assert Task.objects.exists()
    for name, secret in secrets.items():
        assert secret not in logs, f"{name} in the logs"
        assert secret not in task_rows, f"{name} in django-q2 rows"
        assert secret not in exported.getvalue(), f"{name} in the exported configuration"
    assert "grant_type" not in logs
    assert "client_id=" not in logs
    identity_queries = re.findall(r"/identity/oauth/token\?(\S*)", logs)
    assert identity_queries
    assert set(identity_queries) == {"[redacted]"}
