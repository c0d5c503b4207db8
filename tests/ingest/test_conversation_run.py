"""Conversation runs: a request's conversations stored in one transaction give what one-by-one storing gives."""

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agents.ingest
from agents.event_validation import validate_event
from agents.ingest import CONVERSATION_RUN_MAX_EVENTS, _RequestIngest, ingest_events
from agents.models import Conversation, InboundEvent, Meeting, Visitor
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.planning import PlanningLookups
from tests.factories import conversation_event, make_agent, make_organization, meeting_event

pytestmark = pytest.mark.django_db

COOKIE = "id:417-QWE-902&token:_mch-example.com-1714836130000-48213"


def connected_organization(slug: str):
    organization, _ = make_organization(slug=slug, name=slug.title())
    MarketoConnection.objects.create(
        organization=organization, munchkin_id="417-QWE-902", client_id="id", client_secret_encrypted="x",
        status=MarketoConnection.Status.CONNECTED, conversation_activity_type_id=1, meeting_activity_type_id=2,
    )
    make_agent(organization, "agt_1", marketo_enabled=True, lead_sync=True, activity_sync=True)
    return organization


def at(minutes: int) -> str:
    return (datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)).isoformat()


def conversation(index: int, email: str | None, minute: int, **extra) -> dict:
    return conversation_event(
        event_id=f"e{index}", conversation_id=f"c{index}", email=email,
        started_at=at(minute), ended_at=at(minute + 5), **extra,
    )


def test_visitor_twice_counted_by_start():
    organization = connected_organization("acme")

    report = ingest_events(organization, [conversation(1, "ada@example.org", 30), conversation(2, "ada@example.org", 10)])

    assert report.accepted == 2
    visitor = Visitor.objects.get(email="ada@example.org")
    assert visitor.conversation_count == 2
    assert visitor.first_conversation.external_id == "c2"
    assert visitor.latest_conversation.external_id == "c1"
    assert Conversation.objects.get(external_id="c2").interaction_count == 1
    assert Conversation.objects.get(external_id="c1").interaction_count == 2


def test_late_earlier_conversation_moves_counts():
    organization = connected_organization("acme")
    ingest_events(organization, [conversation(1, "ada@example.org", 30)])

    ingest_events(organization, [conversation(2, "ada@example.org", 10), conversation(3, "bob@example.org", 0)])

    assert Conversation.objects.get(external_id="c1").interaction_count == 2
    assert Conversation.objects.get(external_id="c2").interaction_count == 1
    assert Visitor.objects.get(email="ada@example.org").first_conversation.external_id == "c2"
    assert Visitor.objects.get(email="bob@example.org").conversation_count == 1


def test_repeated_conversation_is_duplicate():
    organization = connected_organization("acme")
    first = conversation(1, "ada@example.org", 0)
    again = conversation(1, "ada@example.org", 0)
    again["event_id"] = "e1-again"

    report = ingest_events(organization, [first, again, first])

    assert (report.accepted, report.duplicates) == (1, 2)
    assert Conversation.objects.count() == 1
    assert InboundEvent.objects.get().event_id == "e1"
    assert WritebackRecord.objects.count() == 2


def test_repeated_cookie_plans_one_association():
    organization = connected_organization("acme")

    ingest_events(
        organization,
        [
            conversation(1, "ada@example.org", 0, munchkin_cookie=COOKIE),
            conversation(2, "ada@example.org", 20, munchkin_cookie=COOKIE),
        ],
    )

    assert WritebackRecord.objects.filter(action=WritebackRecord.Action.ASSOCIATE).count() == 1
    assert WritebackRecord.objects.filter(action=WritebackRecord.Action.ACTIVITY).count() == 2


def test_run_releases_waiting_meeting():
    organization = connected_organization("acme")
    ingest_events(organization, [meeting_event(event_id="m1", meeting_id="mtg1", conversation_id="c1", email="ada@example.org")])
    waiting = WritebackRecord.objects.filter(meeting__external_id="mtg1", not_before__isnull=False)
    assert waiting.exists()

    ingest_events(organization, [conversation(1, "ada@example.org", 0), conversation(2, "bob@example.org", 0)])

    meeting = Meeting.objects.get(external_id="mtg1")
    assert meeting.conversation.external_id == "c1"
    assert not waiting.exists()
    activity = WritebackRecord.objects.get(meeting=meeting, action=WritebackRecord.Action.ACTIVITY)
    assert activity.conversation.external_id == "c1"


def test_meeting_between_runs_finds_conversation():
    organization = connected_organization("acme")

    ingest_events(
        organization,
        [
            conversation(1, "ada@example.org", 0),
            meeting_event(event_id="m1", meeting_id="mtg1", conversation_id="c1", email="ada@example.org"),
            conversation(2, "bob@example.org", 0),
        ],
    )

    assert Meeting.objects.get(external_id="mtg1").conversation.external_id == "c1"
    assert not WritebackRecord.objects.filter(not_before__isnull=False).exists()


def test_conversation_without_email_skips_lead():
    organization = connected_organization("acme")

    report = ingest_events(organization, [conversation(1, None, 0), conversation(2, "ada@example.org", 0)])

    assert report.accepted == 2
    assert Conversation.objects.get(external_id="c1").visitor is None
    skipped = WritebackRecord.objects.get(conversation__external_id="c1")
    assert skipped.status == WritebackRecord.Status.SKIPPED
    assert skipped.last_error_code == "no_email"


def test_long_run_split_in_transactions(django_assert_max_num_queries):
    organization = connected_organization("acme")
    count = CONVERSATION_RUN_MAX_EVENTS + 50
    events = [conversation(index, f"v{index}@example.org", index) for index in range(count)]

    # A run costs about a dozen statements, however many conversations it
    # contains. Storing each conversation on its own costs about fourteen each.
    with django_assert_max_num_queries(60):
        report = ingest_events(organization, events)

    assert report.accepted == count
    assert Conversation.objects.count() == count
    assert WritebackRecord.objects.count() == 2 * count


def _state(organization) -> dict:
    """What storing produced for an organization, in terms that don't depend on primary keys."""
    visitors = {
        visitor.email: (
            visitor.conversation_count,
            visitor.first_interaction_at,
            visitor.latest_interaction_at,
            visitor.first_conversation.external_id if visitor.first_conversation else None,
            visitor.latest_conversation.external_id if visitor.latest_conversation else None,
        )
        for visitor in Visitor.objects.filter(organization=organization).select_related("first_conversation", "latest_conversation")
    }
    conversations = dict(
        Conversation.objects.filter(organization=organization).values_list("external_id", "interaction_count")
    )
    records = sorted(
        WritebackRecord.objects.filter(organization=organization).values_list("dedupe_key", "action", "status", "email")
    )
    events = sorted(InboundEvent.objects.filter(organization=organization).values_list("event_id", flat=True))
    return {"visitors": visitors, "conversations": conversations, "records": records, "events": events}


event_specs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=7),  # conversation number: repeats are re-deliveries
        st.sampled_from(["ada@example.org", "bob@example.org", "cy@example.org", None]),
        st.integers(min_value=0, max_value=120),  # start minute
        st.booleans(),  # with a Munchkin cookie
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(event_specs, min_size=1, max_size=3))
def test_runs_match_one_by_one_storing(requests):
    run_org = connected_organization("runs")
    single_org = connected_organization("single")
    try:
        for specs in requests:
            events = []
            for number, email, minute, with_cookie in specs:
                extra = {"munchkin_cookie": COOKIE} if with_cookie else {}
                events.append(conversation(number, email, minute, **extra))

            ingest_events(run_org, events)

            # The same events through the one-transaction-per-event path.
            single = _RequestIngest(single_org, PlanningLookups())
            for index, raw in enumerate(events):
                single.store_one(index, validate_event(raw))

        assert _state(run_org) == _state(single_org)
    finally:
        run_org.delete()
        single_org.delete()


def test_old_sqlite_stores_one_by_one(monkeypatch):
    # SQLite before 3.35 returns no ids from a bulk insert.
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)

    def no_runs(*args, **kwargs):
        raise AssertionError("a run was stored without ids from the bulk insert")

    monkeypatch.setattr(agents.ingest, "store_conversation_run", no_runs)
    organization = connected_organization("acme")

    report = ingest_events(organization, [conversation(1, "ada@example.org", 0), conversation(2, "ada@example.org", 9)])

    assert report.accepted == 2
    assert Conversation.objects.get(external_id="c2").interaction_count == 2
    assert WritebackRecord.objects.count() == 4


def test_escaped_email_stored_with_warning():
    # repr() writes each of these characters as a six-character escape, and
    # the problem text must still fit the 200-character column on PostgreSQL.
    organization = connected_organization("acme")
    bad = conversation(2, "\u200b" * 59 + "@x.example", 5)

    report = ingest_events(organization, [conversation(1, "ada@example.org", 0), bad, conversation(3, "bob@example.org", 9)])

    assert report.accepted == 3
    assert report.rejected == []
    assert [warning["event_id"] for warning in report.warnings] == ["e2"]
    stored = Conversation.objects.get(external_id="c2")
    assert stored.visitor is None
    assert "non-ASCII" in stored.email_problem
