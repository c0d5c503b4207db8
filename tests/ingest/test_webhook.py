"""The webhook and event storage: responses, duplicates, visitors and touches."""

import json

import pytest
from django.test import Client, override_settings

from agents.models import Agent, Conversation, InboundEvent, Meeting, Visitor
from tests.factories import conversation_event, make_organization, meeting_event, sample_events

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def post(client: Client, token: str, body, *, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def organization_and_token():
    return make_organization()


def test_missing_token_is_401(client, organization_and_token):
    response = client.post(URL, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert "token" in response.json()["error"]


def test_wrong_token_is_401(client, organization_and_token):
    response = post(client, "dkt_wrong", conversation_event())
    assert response.status_code == 401


def test_invalid_json_is_400(client, organization_and_token):
    _, token = organization_and_token
    response = post(client, token, None, raw=b"{not json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


@pytest.mark.parametrize("body", [42, "text", [1, 2], {"events": "x"}], ids=["number", "string", "list_of_numbers", "events_not_list"])
def test_non_object_bodies_are_400(client, organization_and_token, body):
    _, token = organization_and_token
    assert post(client, token, body).status_code == 400


@override_settings(INGEST_MAX_BODY_BYTES=1000)
def test_oversized_body_is_413(client, organization_and_token):
    _, token = organization_and_token
    event = conversation_event(summary="x" * 2000)
    response = post(client, token, event)
    assert response.status_code == 413
    assert InboundEvent.objects.count() == 0


def test_valid_and_invalid_events_side_by_side(client, organization_and_token):
    _, token = organization_and_token
    bad = conversation_event(event_id="evt_bad", conversation_id="conv_bad")
    bad["occurred_at"] = "2026-11-02T09:00:00"
    body = {"events": [conversation_event(), bad, meeting_event()]}

    response = post(client, token, body)

    assert response.status_code == 200
    payload = response.json()
    assert payload["accepted"] == 2
    assert payload["duplicates"] == 0
    assert payload["rejected"] == [
        {"index": 1, "event_id": "evt_bad", "field": "occurred_at", "reason": payload["rejected"][0]["reason"]}
    ]
    assert "no UTC offset" in payload["rejected"][0]["reason"]
    assert InboundEvent.objects.count() == 2


def test_repeated_event_is_duplicate(client, organization_and_token):
    _, token = organization_and_token
    post(client, token, conversation_event())

    response = post(client, token, conversation_event())

    assert response.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert Conversation.objects.count() == 1


def test_same_conversation_new_event_id_is_duplicate(client, organization_and_token):
    _, token = organization_and_token
    post(client, token, conversation_event(event_id="evt_a"))

    response = post(client, token, conversation_event(event_id="evt_b"))

    assert response.json()["duplicates"] == 1
    assert Conversation.objects.count() == 1


def test_unknown_agent_is_created_with_writeback_off(client, organization_and_token):
    _, token = organization_and_token
    post(client, token, conversation_event(agent_id="agt_new"))

    agent = Agent.objects.get(external_id="agt_new")
    assert agent.created_from_event
    assert not agent.writeback.marketo_enabled


def test_event_ids_scoped_to_organization(client):
    _, token_a = make_organization("a", "A")
    _, token_b = make_organization("b", "B")

    assert post(client, token_a, conversation_event()).json()["accepted"] == 1
    assert post(client, token_b, conversation_event()).json()["accepted"] == 1


def test_single_event_body_accepted(client, organization_and_token):
    _, token = organization_and_token
    assert post(client, token, conversation_event()).json()["accepted"] == 1


def test_invalid_email_stored_without_visitor(client, organization_and_token):
    _, token = organization_and_token
    post(client, token, conversation_event(email="zoë@example.org"))

    conversation = Conversation.objects.get()
    assert conversation.visitor is None
    assert "non-ASCII" in conversation.email_problem
    assert conversation.raw_email == "zoë@example.org"


def test_email_case_and_spaces_make_one_visitor(client, organization_and_token):
    _, token = organization_and_token
    post(client, token, conversation_event(event_id="e1", conversation_id="c1", email="Ada@Example.org"))
    post(client, token, conversation_event(event_id="e2", conversation_id="c2", email=" ada@example.ORG "))

    assert Visitor.objects.count() == 1
    assert Visitor.objects.get().email == "ada@example.org"


def test_touches_out_of_order(client, organization_and_token):
    _, token = organization_and_token
    later = conversation_event(event_id="e2", conversation_id="c2", started_at="2026-11-11T10:00:00Z", ended_at="2026-11-11T10:05:00Z")
    earlier = conversation_event(event_id="e1", conversation_id="c1", started_at="2026-11-04T10:00:00Z", ended_at="2026-11-04T10:05:00Z")

    post(client, token, later)
    post(client, token, earlier)

    visitor = Visitor.objects.get()
    assert visitor.first_conversation.external_id == "c1"
    assert visitor.latest_conversation.external_id == "c2"
    assert visitor.conversation_count == 2
    assert Conversation.objects.get(external_id="c1").interaction_count == 1
    assert Conversation.objects.get(external_id="c2").interaction_count == 2


def test_meeting_before_conversation_is_linked(client, organization_and_token):
    _, token = organization_and_token
    post(client, token, meeting_event())
    post(client, token, conversation_event())

    assert Meeting.objects.get().conversation.external_id == "conv_1"


def test_samples_ingest(client, organization_and_token):
    _, token = organization_and_token

    response = post(client, token, {"events": sample_events()})

    assert response.json() == {"accepted": 40, "duplicates": 0, "rejected": []}
    assert Visitor.objects.count() == 23
    assert Conversation.objects.count() == 25
    assert Meeting.objects.count() == 13


def test_rate_limit_counter_down_still_stores(client, organization_and_token, monkeypatch, caplog):
    # The counter lives in Redis or a database table. When it fails, the
    # events are still stored rather than refused.
    import agents.api

    def counter_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(agents.api.cache, "add", counter_down)
    _, token = organization_and_token

    response = post(client, token, conversation_event(event_id="e1", conversation_id="c1"))

    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert "ingest.rate_limit.unavailable" in caplog.text


@override_settings(INGEST_RATE_LIMIT_PER_MINUTE=2)
def test_rate_limit_is_429_with_retry_after(client, organization_and_token):
    from django.core.cache import cache

    cache.clear()
    _, token = organization_and_token
    post(client, token, conversation_event(event_id="e1", conversation_id="c1"))
    post(client, token, conversation_event(event_id="e2", conversation_id="c2"))

    response = post(client, token, conversation_event(event_id="e3", conversation_id="c3"))

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
