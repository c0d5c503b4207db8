"""Property tests of the webhook: no input makes it fail with 500, and it stores exactly what it accepts."""

import json

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from agents.event_validation import EVENT_TYPES
from agents.models import InboundEvent
from integrations.models import MarketoConnection
from tests.factories import conversation_event, make_agent, make_organization, meeting_event

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text with the characters that break storage or parsing: NUL, unpaired
# surrogates, markup, right-to-left marks, emoji and combining accents.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20),
    st.sampled_from(["\x00", "\ud800", "<script>x</script>", "\u202e", "👩‍👩‍👧", "é", "", " ", "a" * 300]),
)
timestamps = st.one_of(
    st.sampled_from([
        "2026-11-02T09:41:11Z", "2026-11-02T09:41:11", "2026-11-02T09:41:11+14:00", "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00", "2026-02-30T00:00:00Z", "2026-11-02T24:00:00Z", "2026-11-02 09:41:11.123456789z",
    ]),
    hostile_text,
    st.integers(),
    st.none(),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), hostile_text
)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4), max_leaves=12
)


@st.composite
def event_shaped(draw):
    """An event built from the sample shapes with some fields replaced by arbitrary values."""
    index = draw(st.integers(min_value=0, max_value=30))
    if draw(st.booleans()):
        event = conversation_event(event_id=f"evt_{index}", conversation_id=f"conv_{index}", email=f"v{index}@example.org")
        paths = [
            ("type",), ("occurred_at",), ("agent",), ("agent", "id"), ("agent", "name"), ("conversation",),
            ("conversation", "id"), ("conversation", "started_at"), ("conversation", "ended_at"),
            ("conversation", "visitor"), ("conversation", "visitor", "email"), ("conversation", "summary"),
            ("conversation", "transcript"), ("conversation", "attribution"), ("conversation", "post_call_analysis"),
            ("conversation", "meeting_status"), ("conversation", "landing_page_url"), ("conversation", "munchkin_cookie"),
        ]
    else:
        event = meeting_event(
            event_id=f"evt_m{index}", meeting_id=f"mtg_{index}", event_type=draw(st.sampled_from(EVENT_TYPES[1:]))
        )
        paths = [
            ("type",), ("occurred_at",), ("meeting",), ("meeting", "id"), ("meeting", "start_at"), ("meeting", "owner"),
            ("meeting", "attendee"), ("meeting", "attendee", "email"), ("meeting", "status"), ("meeting", "booking_id"),
            ("meeting", "conversation_id"),
        ]

    for path in draw(st.lists(st.sampled_from(paths), max_size=4)):
        target = event
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                break
            target = target[key]
        else:
            target[path[-1]] = draw(st.one_of(timestamps, json_values))
    return event


@pytest.fixture
def new_workspace(client, settings):
    """Return a factory of fresh organizations, one per example, so examples don't share event ids."""
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 100_000
    numbers = iter(range(1_000_000))

    def create():
        organization, token = make_organization(f"fuzz-{next(numbers)}")
        MarketoConnection.objects.create(
            organization=organization, munchkin_id="417-QWE-902", client_id="fuzz", client_secret_encrypted="x",
            status=MarketoConnection.Status.CONNECTED, conversation_activity_type_id=1, meeting_activity_type_id=2,
        )
        make_agent(organization, "agt_1", marketo_enabled=True, lead_sync=True, activity_sync=True, program_enrollment=True)

        def send(body: bytes):
            response = client.post(
                "/api/v1/events", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            return organization, response

        return send

    return create


def check_response(organization, response, sent_ids: list):
    """Check the status and that exactly the accepted events were stored, and no rejected one."""
    assert response.status_code in (200, 400), response.content[:500]
    body = response.json()
    stored = set(InboundEvent.objects.filter(organization=organization).values_list("event_id", flat=True))
    if response.status_code == 400:
        assert body["error"]
        assert stored == set()
        return
    assert len(stored) == body["accepted"]
    # An id sent twice in one request may be accepted once and rejected once.
    repeated = {event_id for event_id in sent_ids if sent_ids.count(event_id) > 1}
    for rejection in body["rejected"]:
        assert rejection["field"]
        assert rejection["reason"]
        if rejection["event_id"] not in repeated:
            assert rejection["event_id"] not in stored


def _body(value) -> bytes:
    # ensure_ascii writes NUL and surrogates as \u escapes, as a sender's JSON library would.
    return json.dumps(value, allow_nan=True).encode("utf-8")


def _event_ids(value) -> list:
    if isinstance(value, dict) and isinstance(value.get("events"), list):
        value = value["events"]
    items = value if isinstance(value, list) else [value]
    return [str(item.get("event_id")).strip() for item in items if isinstance(item, dict)]


@FUZZ
@given(value=json_values)
def test_fuzz_any_json_value(new_workspace, value):
    organization, response = new_workspace()(_body(value))

    check_response(organization, response, _event_ids(value))


@FUZZ
@given(events=st.lists(event_shaped(), min_size=1, max_size=5), wrapped=st.booleans())
def test_fuzz_event_shaped(new_workspace, events, wrapped):
    body = {"events": events} if wrapped else events
    organization, response = new_workspace()(_body(body))

    check_response(organization, response, _event_ids(body))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_fuzz_raw_bytes(new_workspace, raw):
    organization, response = new_workspace()(raw)

    check_response(organization, response, [])
