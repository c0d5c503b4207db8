"""A fixed-seed mix of Marketo faults over a few hundred events: every write lands exactly once.

Events arrive through the webhook in rounds. Before each round's drain,
faults are queued in the sandbox for the calls that come next. They are
rate and concurrency limits, system errors, HTTP 5xx, responses dropped
before or after Marketo applied the call, delays under the read timeout,
and expired tokens. After the last round the faults are cleared, dead letters are
re-queued with `backfill_marketo`, and the writeback drains until idle.
"""

import io
import json
import os
import random
from collections import Counter

import pytest
import requests
from django.core.management import call_command

from agents.models import InboundEvent
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.drain import drain
from tests.factories import conversation_event, meeting_event
from tests.writeback.helpers import activity_type_ids, attributes_of, member_status

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# CHAOS_SEED replays another mix; the default keeps CI deterministic.
SEED = int(os.environ.get("CHAOS_SEED", "20261204"))
PRICING_AGENT = "agt_p7k2m9x4q1ra"
ROUNDS = 8
CONVERSATIONS_PER_ROUND = 20
VISITORS = 110

FAULT_PATHS = [
    ("/rest/v1/leads.json", "POST", "exact"),
    ("/rest/v1/leads.json", "GET", "exact"),
    ("/rest/v1/activities/external.json", "POST", "exact"),
    ("/rest/v1/programs/", "POST", "prefix"),
    ("/rest/v1/activities.json", "GET", "exact"),
    ("/rest/v1/activities/pagingtoken.json", "GET", "exact"),
    ("/rest/v1/leads/", "POST", "prefix"),
]
FAULT_KINDS = [
    {"code": "606"},
    {"code": "615"},
    {"code": "611"},
    {"code": "604"},
    {"code": "608"},
    {"http_status": 500},
    {"http_status": 502},
    {"mode": "drop_before_apply"},
    {"mode": "drop_after_apply"},
    {"delay_seconds": 0.3},
    {"delay_seconds": 0.2, "mode": "drop_after_apply"},
]


def control(sandbox, operation: str, body: dict):
    response = requests.post(f"{sandbox.url}/_sandbox/{operation}", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def build_rounds(rng: random.Random) -> tuple[list[list[dict]], dict]:
    """Return the events of each round and what the sandbox must hold afterwards."""
    expected = {"conversations": set(), "meetings": Counter(), "booked_emails": set(), "engaged_emails": set(), "invalid": {}}
    rounds = []
    number = 0
    for round_index in range(ROUNDS):
        events = []
        for _ in range(CONVERSATIONS_PER_ROUND):
            number += 1
            email = f"visitor{rng.randrange(VISITORS)}@chaos.example"
            day = 1 + number % 27
            conversation_id = f"conv_{number}"
            events.append(conversation_event(
                event_id=f"evt_{number}", conversation_id=conversation_id, email=email, agent_id=PRICING_AGENT,
                started_at=f"2026-10-{day:02d}T10:{number % 60:02d}:00Z",
                ended_at=f"2026-10-{day:02d}T11:{number % 60:02d}:00Z",
            ))
            expected["conversations"].add(conversation_id)
            expected["engaged_emails"].add(email)

            if rng.random() < 0.3:
                meeting_id = f"mtg_{number}"
                events.append(meeting_event(
                    event_id=f"evt_{number}_booked", meeting_id=meeting_id, conversation_id=conversation_id,
                    email=email, agent_id=PRICING_AGENT, occurred_at=f"2026-10-{day:02d}T11:30:00Z",
                ))
                expected["meetings"][(meeting_id, "booked")] += 1
                expected["booked_emails"].add(email)
                if rng.random() < 0.3:
                    events.append(meeting_event(
                        event_id=f"evt_{number}_moved", meeting_id=meeting_id, conversation_id=conversation_id,
                        email=email, agent_id=PRICING_AGENT, event_type="meeting.rescheduled",
                        start_at="2026-11-20T10:00:00-06:00", occurred_at=f"2026-10-{day:02d}T12:00:00Z",
                    ))
                    expected["meetings"][(meeting_id, "rescheduled")] += 1

        for invalid_index in range(3):
            number += 1
            event = conversation_event(event_id=f"bad_{number}", conversation_id=f"bad_conv_{number}")
            if invalid_index == 0:
                event["occurred_at"] = "2026-10-01T10:00:00"
                expected["invalid"][event["event_id"]] = "occurred_at"
            elif invalid_index == 1:
                event["type"] = "conversation.deleted"
                expected["invalid"][event["event_id"]] = "type"
            else:
                del event["conversation"]["id"]
                expected["invalid"][event["event_id"]] = "conversation.id"
            events.append(event)

        rng.shuffle(events)
        rounds.append(events)
    return rounds, expected


def inject_faults(sandbox, rng: random.Random):
    for _ in range(rng.randint(2, 4)):
        path, method, match = rng.choice(FAULT_PATHS)
        kind = rng.choice(FAULT_KINDS)
        control(sandbox, "faults", {"path": path, "method": method, "match": match, "count": rng.randint(1, 2), **kind})
    if rng.random() < 0.4:
        control(sandbox, "expire_tokens", {})


def test_chaos_writes_exactly_once(client, connected, sandbox, fast_writeback):
    fast_writeback.WRITEBACK_MEETING_WAIT_SECONDS = 0
    # Docket's limiter allows 100 calls per second here, so the test never
    # waits out a 20-second window; the sandbox's own limit stays in force.
    MarketoConnection.objects.filter(organization=connected).update(rate_limit_calls=100, rate_limit_window_seconds=1)
    control(sandbox, "set_limits", {"rate_limit_calls": 10_000})
    rng = random.Random(SEED)
    rounds, expected = build_rounds(rng)

    rejected = {}
    for events in rounds:
        response = client.post(
            "/api/v1/events", data=json.dumps({"events": events}), content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {connected.token}",
        )
        assert response.status_code == 200
        for rejection in response.json()["rejected"]:
            rejected[rejection["event_id"]] = rejection
        inject_faults(sandbox, rng)
        drain(connected, timeout_seconds=20)

    control(sandbox, "faults/clear", {})
    call_command("backfill_marketo", "--org", connected.slug, stdout=io.StringIO(), stderr=io.StringIO())
    final = drain(connected, timeout_seconds=60)

    # Invalid events: rejected with their field and a reason, never stored.
    assert {event_id: entry["field"] for event_id, entry in rejected.items()} == expected["invalid"]
    assert all(entry["reason"] for entry in rejected.values())
    assert not InboundEvent.objects.filter(event_id__in=list(expected["invalid"])).exists()

    # Nothing left behind: no pending, in-flight or dead-lettered write.
    assert final.pending == 0
    assert final.paused == {}
    assert not WritebackRecord.objects.filter(status=WritebackRecord.Status.FAILED).exists()

    types = activity_type_ids(sandbox)
    activities = sandbox.state.dump()["activities"]
    conversation_counts = Counter(
        activity["primaryAttributeValue"] for activity in activities if activity["activityTypeId"] == types["docketConversation"]
    )
    meeting_counts = Counter(
        (activity["primaryAttributeValue"], attributes_of(activity).get("meetingStatus"))
        for activity in activities
        if activity["activityTypeId"] == types["docketMeetingBooked"]
    )
    assert set(conversation_counts) == expected["conversations"]
    assert set(conversation_counts.values()) == {1}
    assert meeting_counts == expected["meetings"]

    # One lead per visitor, and program status forward-only.
    leads = {}
    for lead in sandbox.state.dump()["leads"]:
        email = str(lead.get("email", "")).lower()
        if email.endswith("@chaos.example"):
            assert email not in leads, f"two leads for {email}"
            leads[email] = lead
    assert set(leads) == expected["engaged_emails"]
    for email, lead in leads.items():
        want = "Meeting Booked" if email in expected["booked_emails"] else "Engaged"
        assert member_status(sandbox, "Docket Engagement", lead["id"]) == want, email
