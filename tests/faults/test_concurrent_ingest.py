"""Concurrent requests carrying the same events and visitors on PostgreSQL: each event stored once, no request failed.

Requests race on three things: the unique event and conversation ids (a
sender retrying a delivery that is still being stored), visitor rows (a
visitor's conversations in different requests) and the order in which
they take them. Conversation runs lock visitors in email order and fall
back to one transaction per event when their transaction fails.
"""

import random
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from agents.ingest import ingest_events
from agents.models import Conversation, InboundEvent, Meeting, Visitor
from integrations.models import MarketoConnection, WritebackRecord
from tests.factories import conversation_event, make_agent, make_organization, meeting_event

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 6
EVENTS = 40
VISITORS = 7


@pytest.fixture
def organization():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent writers need PostgreSQL (DATABASE_URL)")
    organization, _ = make_organization()
    MarketoConnection.objects.create(
        organization=organization, munchkin_id="417-QWE-902", client_id="id", client_secret_encrypted="x",
        status=MarketoConnection.Status.CONNECTED, conversation_activity_type_id=1, meeting_activity_type_id=2,
    )
    make_agent(organization, "agt_1", marketo_enabled=True, lead_sync=True, activity_sync=True)
    return organization


def events() -> list[dict]:
    start = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
    built = []
    for index in range(EVENTS):
        started = start + timedelta(minutes=(index * 37) % 200)
        built.append(
            conversation_event(
                event_id=f"e{index}", conversation_id=f"c{index}", email=f"v{index % VISITORS}@example.org",
                started_at=started.isoformat(), ended_at=(started + timedelta(minutes=4)).isoformat(),
            )
        )
    return built


def ingest_at_once(organization, bodies: list[list[dict]]) -> tuple[list, list]:
    """Post every body from its own thread, all released together; return (reports, errors)."""
    barrier = threading.Barrier(len(bodies))
    reports, errors = [], []

    def post(body):
        try:
            barrier.wait()
            reports.append(ingest_events(organization, body))
        except Exception as error:  # noqa: BLE001 - the caller asserts that there are none
            errors.append(error)
        finally:
            # Django closes a connection only from the thread that opened it.
            connection.close()

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return reports, errors


def test_overlapping_requests_store_once(organization):
    rng = random.Random(20261204)
    bodies = []
    for _ in range(REQUESTS):
        # Every request carries a random half of the events in a random order.
        body = rng.sample(events(), EVENTS // 2)
        bodies.append(body)

    reports, errors = ingest_at_once(organization, bodies)

    assert errors == []
    sent = {event["event_id"] for body in bodies for event in body}
    assert sum(report.accepted for report in reports) == len(sent)
    assert sum(report.duplicates for report in reports) == REQUESTS * (EVENTS // 2) - len(sent)
    assert InboundEvent.objects.count() == len(sent)
    assert Conversation.objects.count() == len(sent)

    activities = Counter(
        WritebackRecord.objects.filter(action=WritebackRecord.Action.ACTIVITY).values_list("conversation__external_id", flat=True)
    )
    assert set(activities.values()) == {1}
    assert len(activities) == len(sent)


def test_concurrent_requests_keep_counts(organization):
    rng = random.Random(7)
    all_events = events()
    rng.shuffle(all_events)
    # Disjoint requests, but each visitor's conversations spread across them.
    bodies = [all_events[index::REQUESTS] for index in range(REQUESTS)]

    _, errors = ingest_at_once(organization, bodies)

    assert errors == []
    for visitor in Visitor.objects.all():
        ordered = list(visitor.conversations.order_by("started_at", "id"))
        assert visitor.conversation_count == len(ordered)
        assert visitor.first_conversation_id == ordered[0].pk
        assert visitor.latest_conversation_id == ordered[-1].pk
        assert [conversation.interaction_count for conversation in ordered] == list(range(1, len(ordered) + 1))


def test_meeting_and_its_conversation_at_once(organization):
    # The meeting names a conversation stored by a concurrent request. Without
    # a lock both could miss each other's uncommitted row, and the meeting's
    # activity would wait out its delay and go out without attribution.
    rounds = 20
    for number in range(rounds):
        conversation_body = [
            conversation_event(event_id=f"race-c{number}", conversation_id=f"race{number}", email=f"r{number}@example.org")
        ]
        meeting_body = [
            meeting_event(event_id=f"race-m{number}", meeting_id=f"race-mtg{number}", conversation_id=f"race{number}", email=None)
        ]

        _, errors = ingest_at_once(organization, [conversation_body, meeting_body])
        assert errors == []

    unlinked = list(Meeting.objects.filter(conversation=None).values_list("external_id", flat=True))
    assert unlinked == []
    waiting = WritebackRecord.objects.filter(meeting__isnull=False, not_before__isnull=False)
    assert list(waiting.values_list("dedupe_key", flat=True)) == []
    assert not WritebackRecord.objects.filter(meeting__isnull=False, conversation=None).exists()
