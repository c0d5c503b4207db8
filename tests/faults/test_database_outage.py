"""The webhook when the database goes away: 503, and nothing acknowledged that was not stored."""

import json

import pytest
from django.db import DataError, OperationalError, connection, connections

import agents.ingest
import integrations.writeback.queueing
from agents.models import Conversation, InboundEvent
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.tasks import sweep_writeback
from tests.factories import conversation_event, make_agent, make_organization, meeting_event
from tests.faults.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workspace():
    organization, token = make_organization()
    MarketoConnection.objects.create(
        organization=organization, munchkin_id="417-QWE-902", client_id="id", client_secret_encrypted="x",
        status=MarketoConnection.Status.CONNECTED, conversation_activity_type_id=1, meeting_activity_type_id=2,
    )
    make_agent(organization, "agt_1", marketo_enabled=True, lead_sync=True, activity_sync=True)
    organization.token = token
    return organization


def events(count: int) -> dict:
    return {"events": [conversation_event(event_id=f"e{index}", conversation_id=f"c{index}", email=f"v{index}@example.org") for index in range(count)]}


def post(client, organization, body):
    return client.post(
        "/api/v1/events", data=json.dumps(body), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {organization.token}",
    )


class FailingInserts:
    """An execute wrapper that raises OperationalError on event inserts number `fail_at` to `fail_until`, as a lost database does."""

    def __init__(self, fail_at: int, fail_until: int | None = None):
        self.fail_at = fail_at
        self.fail_until = fail_until
        self.inserts = 0

    def __call__(self, execute, sql, params, many, context):
        if sql.lstrip().upper().startswith('INSERT INTO "AGENTS_INBOUNDEVENT"'):
            self.inserts += 1
            if self.inserts >= self.fail_at and (self.fail_until is None or self.inserts <= self.fail_until):
                raise OperationalError("database is unavailable (injected at the cursor)")
        return execute(sql, params, many, context)


def conversations_around_a_meeting() -> dict:
    """Return a conversation, a meeting, then two conversations, which are stored in three transactions."""
    return {
        "events": [
            conversation_event(event_id="e0", conversation_id="c0", email="v0@example.org"),
            meeting_event(event_id="m0", meeting_id="mtg0", conversation_id="c0", email="v0@example.org"),
            conversation_event(event_id="e1", conversation_id="c1", email="v1@example.org"),
            conversation_event(event_id="e2", conversation_id="c2", email="v2@example.org"),
        ]
    }


def test_outage_mid_request_is_503(client, workspace):
    with connection.execute_wrapper(FailingInserts(fail_at=2)):
        response = post(client, workspace, conversations_around_a_meeting())

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    assert "Retry later" in response.json()["error"]
    assert "accepted" not in response.json()
    # The first conversation's own transaction committed before the failure, with its writeback plan.
    assert list(InboundEvent.objects.values_list("event_id", flat=True)) == ["e0"]
    assert WritebackRecord.objects.filter(event__event_id="e0").count() == 2
    assert not WritebackRecord.objects.exclude(event__event_id="e0").exists()

    retry = post(client, workspace, conversations_around_a_meeting())

    assert retry.json() == {"accepted": 3, "duplicates": 1, "rejected": []}
    assert InboundEvent.objects.count() == 4


def test_outage_during_run_stores_nothing(client, workspace):
    with connection.execute_wrapper(FailingInserts(fail_at=1)):
        response = post(client, workspace, events(3))

    assert response.status_code == 503
    assert InboundEvent.objects.count() == 0
    assert not WritebackRecord.objects.exists()
    assert not Conversation.objects.exists()

    retry = post(client, workspace, events(3))

    assert retry.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert WritebackRecord.objects.count() == 6


def test_failed_run_retried_event_by_event(client, workspace, caplog):
    # The run's transaction fails once, as in a deadlock. Each event then
    # gets its own transaction and all of them are stored.
    with connection.execute_wrapper(FailingInserts(fail_at=1, fail_until=1)):
        response = post(client, workspace, events(3))

    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert sorted(InboundEvent.objects.values_list("event_id", flat=True)) == ["e0", "e1", "e2"]
    assert WritebackRecord.objects.count() == 6
    assert Conversation.objects.count() == 3
    assert "ingest.run.one_by_one org=acme events=3 first_event_id=e0 reason=OperationalError" in caplog.text


def test_unstorable_event_rejected_alone(client, workspace):
    # A value the database can't store, which validation let through, fails
    # that event alone. Rejecting it keeps every retry of the request from failing.
    def reject_meeting_insert(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith('INSERT INTO "AGENTS_MEETING"'):
            raise DataError("value too long for type character varying(200) (injected at the cursor)")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(reject_meeting_insert):
        response = post(client, workspace, conversations_around_a_meeting())

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (3, 0)
    assert len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert (rejected["index"], rejected["event_id"], rejected["field"]) == (1, "m0", "event")
    assert "value too long for type character varying(200)" in rejected["reason"]
    assert "send the event again" in rejected["reason"]
    assert sorted(InboundEvent.objects.values_list("event_id", flat=True)) == ["e0", "e1", "e2"]


def test_outage_before_auth_stores_nothing(client, workspace):
    def refuse_everything(execute, sql, params, many, context):
        raise OperationalError("database is unavailable (injected at the cursor)")

    with connection.execute_wrapper(refuse_everything):
        response = post(client, workspace, events(2))

    assert response.status_code == 503
    assert "nothing was stored" in response.json()["error"]
    assert InboundEvent.objects.count() == 0


def test_broker_failure_still_acknowledges(client, workspace, monkeypatch):
    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(integrations.writeback.queueing, "async_task", broker_down)

    response = post(client, workspace, events(2))

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert InboundEvent.objects.count() == 2

    queued = []
    monkeypatch.setattr(integrations.writeback.queueing, "async_task", lambda *args, **kwargs: queued.append(args))
    # The sweep finds the stored work the failed queueing left behind.
    assert sweep_writeback() == 1
    assert queued == [(integrations.writeback.queueing.FLUSH_TASK, workspace.marketo_connection.pk)]


@pytest.fixture
def database_through_proxy():
    """Point the default connection at a TCP proxy in front of PostgreSQL, so a test can cut it."""
    if connection.vendor != "postgresql":
        pytest.skip("the network cut needs PostgreSQL (DATABASE_URL)")
    settings_dict = connections["default"].settings_dict
    original = (settings_dict["HOST"], settings_dict["PORT"])
    proxy = TcpProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)).start()
    connections["default"].close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(proxy.port)
    yield proxy
    connections["default"].close()
    settings_dict["HOST"], settings_dict["PORT"] = original
    proxy.stop()


def test_network_cut_mid_request(client, workspace, monkeypatch, database_through_proxy):
    proxy = database_through_proxy
    real_store = agents.ingest.store_event

    def cut_then_store(*args, **kwargs):
        # The meeting, stored after the first conversation's run committed.
        proxy.cut()
        return real_store(*args, **kwargs)

    monkeypatch.setattr(agents.ingest, "store_event", cut_then_store)
    response = post(client, workspace, conversations_around_a_meeting())
    monkeypatch.setattr(agents.ingest, "store_event", real_store)
    proxy.restore()

    assert response.status_code == 503
    assert "Retry later" in response.json()["error"]

    retry = post(client, workspace, conversations_around_a_meeting())

    assert retry.status_code == 200
    assert retry.json() == {"accepted": 3, "duplicates": 1, "rejected": []}
    assert sorted(InboundEvent.objects.values_list("event_id", flat=True)) == ["e0", "e1", "e2", "m0"]
