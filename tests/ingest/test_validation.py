"""Validation of single events: each rejection names the field and the reason."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.event_validation import InvalidEvent, normalize_email, parse_datetime, validate_event
from tests.factories import conversation_event, meeting_event, sample_events


def test_sample_events_all_valid():
    for raw in sample_events():
        validate_event(raw)


@pytest.mark.parametrize(
    ("mutate", "field", "reason_part"),
    [
        pytest.param(lambda e: e.pop("event_id"), "event_id", "required", id="missing_event_id"),
        pytest.param(lambda e: e.update(type="chat.started"), "type", "'chat.started'", id="unknown_type"),
        pytest.param(lambda e: e.pop("type"), "type", "required", id="missing_type"),
        pytest.param(lambda e: e.update(occurred_at="2026-11-02T09:41:11"), "occurred_at", "no UTC offset", id="no_offset"),
        pytest.param(lambda e: e.update(occurred_at="yesterday"), "occurred_at", "not an RFC 3339", id="not_a_date"),
        pytest.param(lambda e: e.pop("agent"), "agent", "required", id="missing_agent"),
        pytest.param(lambda e: e["agent"].pop("id"), "agent.id", "required", id="missing_agent_id"),
        pytest.param(lambda e: e.pop("conversation"), "conversation", "required", id="missing_conversation"),
        pytest.param(lambda e: e["conversation"].pop("id"), "conversation.id", "required", id="missing_conversation_id"),
        pytest.param(lambda e: e["conversation"].update(started_at="2026-11-02 09:41"), "conversation.started_at", "not an RFC 3339", id="bad_started_at"),
        pytest.param(lambda e: e["conversation"].update(transcript="hello"), "conversation.transcript", "list", id="transcript_not_list"),
        pytest.param(lambda e: e["conversation"]["transcript"][0].update(role="bot"), "conversation.transcript[0].role", "'bot'", id="bad_role"),
        pytest.param(lambda e: e["conversation"].update(meeting_status="maybe"), "conversation.meeting_status", "'maybe'", id="bad_meeting_status"),
        pytest.param(lambda e: e["conversation"].update(post_call_analysis={"x": [1]}), "conversation.post_call_analysis.x", "string, number or boolean", id="bad_analysis_value"),
        pytest.param(lambda e: e["conversation"].update(attribution="utm"), "conversation.attribution", "object", id="attribution_not_object"),
    ],
)
def test_conversation_rejections(mutate, field, reason_part):
    event = conversation_event()
    mutate(event)

    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)

    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_rejection_carries_event_id():
    event = conversation_event(event_id="evt_bad")
    event["type"] = "nope"

    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)

    assert caught.value.event_id == "evt_bad"


def test_event_not_an_object():
    with pytest.raises(InvalidEvent) as caught:
        validate_event(["not", "an", "object"])
    assert caught.value.field == "event"


def test_meeting_requires_meeting_object():
    event = meeting_event()
    event.pop("meeting")
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)
    assert caught.value.field == "meeting"


def test_meeting_status_follows_event_type():
    event = meeting_event(event_type="meeting.cancelled")
    event["meeting"]["status"] = "booked"

    valid = validate_event(event)

    assert valid.meeting["status"] == "cancelled"
    assert valid.warnings


def test_ended_before_started_is_kept_with_warning():
    event = conversation_event(started_at="2026-11-02T10:00:00Z", ended_at="2026-11-02T09:00:00Z")

    valid = validate_event(event)

    assert valid.conversation["ended_at"] < valid.conversation["started_at"]
    assert "before" in valid.warnings[0]


def test_transcript_sent_at_without_offset_is_utc():
    event = conversation_event()
    event["conversation"]["transcript"][0]["sent_at"] = "2026-11-02T15:41:12"

    valid = validate_event(event)

    assert valid.conversation["transcript"][0]["sent_at"] == "2026-11-02T15:41:12+00:00"


@pytest.mark.parametrize(
    ("raw", "email", "problem_part"),
    [
        pytest.param("  Ada@Example.ORG ", "ada@example.org", "", id="trim_and_lower"),
        pytest.param(None, "", "no email", id="missing"),
        pytest.param("", "", "no email", id="empty"),
        pytest.param("not-an-email", "", "not a valid address", id="invalid"),
        pytest.param("zoë@example.org", "", "non-ASCII", id="non_ascii"),
        pytest.param(42, "", "must be a string", id="number"),
    ],
)
def test_normalize_email(raw, email, problem_part):
    normalized, problem = normalize_email(raw)
    assert normalized == email
    assert problem_part in problem


def test_parse_datetime_keeps_offset():
    value = parse_datetime("2026-11-02T09:41:11.123-06:00", "x")
    assert value.utcoffset().total_seconds() == -6 * 3600


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_email_problem_fits_its_column(raw):
    # Conversation.email_problem is 200 characters, and repr() writes a
    # control or format character as an escape of up to ten characters.
    _, problem = normalize_email(raw)
    assert len(problem) <= 200


@pytest.mark.parametrize("raw", ["\u200b" * 59 + "@x.example", "\x01" * 70, "\U0001f600" * 100 + "@x.example"])
def test_email_problem_quotes_escapes_briefly(raw):
    _, problem = normalize_email(raw)
    assert problem
    assert len(problem) <= 200
    assert "…" in problem
