"""Validation of Docket events against the event format.

`validate_event` turns one decoded JSON value into a `ValidEvent` or raises
`InvalidEvent` naming the field and the reason. Problems that don't stop an
event from being stored (an unusable visitor email, a timestamp order that
makes no sense) are kept on the event as warnings instead, because rejecting
the event would lose the conversation.
"""

import re
from dataclasses import dataclass, field
import math
from datetime import datetime, timezone

EVENT_TYPES = (
    "conversation.completed",
    "meeting.booked",
    "meeting.rescheduled",
    "meeting.cancelled",
)
MEETING_STATUS_BY_TYPE = {
    "meeting.booked": "booked",
    "meeting.rescheduled": "rescheduled",
    "meeting.cancelled": "cancelled",
}
CONVERSATION_MEETING_STATUSES = ("not_booked", "booked", "rescheduled", "cancelled")
MEETING_STATUSES = ("booked", "rescheduled", "cancelled")
VISITOR_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country")
MAX_ID_LENGTH = 200

# RFC 3339 date-time; the offset is required (a missing offset is rejected
# because the moment it names is ambiguous).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_RFC3339_NO_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$")

# A pragmatic address check: one @, a dot in the domain, no spaces. Marketo
# stores only ASCII addresses, so non-ASCII ones are reported separately.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidEvent(Exception):
    """An event that can't be accepted; `field` is a dotted path into the event."""

    def __init__(self, field_path: str, reason: str, event_id: str = ""):
        super().__init__(f"{field_path}: {reason}")
        self.field = field_path
        self.reason = reason
        self.event_id = event_id


@dataclass
class ValidEvent:
    event_id: str
    type: str
    occurred_at: datetime
    agent_id: str
    agent_name: str
    payload: dict
    conversation: dict | None = None
    meeting: dict | None = None
    warnings: list[str] = field(default_factory=list)


def parse_datetime(value, field_path: str, *, offset_required: bool = True) -> datetime:
    """Parse an RFC 3339 timestamp into an aware datetime.

    Without an offset the value is rejected, unless `offset_required` is off
    (transcript `sent_at`), in which case it is read as UTC.
    """
    if not isinstance(value, str):
        raise InvalidEvent(field_path, f"must be an RFC 3339 datetime string, got {_describe(value)}.")

    text = value.strip()
    if _RFC3339_NO_OFFSET.match(text):
        if offset_required:
            raise InvalidEvent(
                field_path,
                f"{value!r} has no UTC offset; add one, e.g. {text}Z or {text}-05:00.",
            )
        text += "+00:00"
    elif not _RFC3339.match(text):
        raise InvalidEvent(
            field_path, f"{value!r} is not an RFC 3339 datetime such as 2026-11-02T09:41:11-06:00."
        )

    normalized = text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T").replace(" ", "T")
    try:
        parsed = datetime.fromisoformat(normalized)
        # The database stores UTC; a moment past year 9999 there can't be stored.
        parsed.astimezone(timezone.utc)
    except ValueError:
        raise InvalidEvent(field_path, f"{value!r} is not a valid date and time.") from None
    except OverflowError:
        raise InvalidEvent(field_path, f"{value!r} is out of range; use a date between years 1 and 9999 in UTC.") from None
    return parsed


def normalize_email(value) -> tuple[str, str]:
    """Return (normalized email, problem). The problem is '' for a usable address.

    Addresses are trimmed and compared without case, so one person is one
    visitor and one Marketo lead whatever the capitalization.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return "", "The visitor has no email address."
    if not isinstance(value, str):
        return "", f"The visitor email must be a string, got {_describe(value)}."

    email = value.strip().lower()
    # The problem is stored in a 200-character column, so it quotes at most
    # the start of a long value.
    shown = _quote(value.strip(), 60)
    if len(email) > 254:
        return "", "The visitor email is longer than 254 characters."
    if not _EMAIL.match(email):
        return "", f"The visitor email {shown} is not a valid address."
    if not email.isascii():
        return "", f"The visitor email {shown} contains non-ASCII characters, which Marketo can't store."
    return email, ""


def validate_event(raw) -> ValidEvent:
    """Validate one decoded event; raise InvalidEvent naming the field and reason."""
    if not isinstance(raw, dict):
        raise InvalidEvent("event", f"must be a JSON object, got {_describe(raw)}.")

    try:
        event_id = _required_id(raw, "event_id", "event_id")
    except InvalidEvent as error:
        # Echo a recognisable prefix of an over-long id so the sender can
        # match the rejection to its event.
        given = raw.get("event_id")
        error.event_id = given[:MAX_ID_LENGTH] if isinstance(given, str) else ""
        raise
    try:
        _check_storable(raw)
        event = _validate_envelope(raw, event_id)
    except InvalidEvent as error:
        error.event_id = event_id
        raise
    return event


def _validate_envelope(raw: dict, event_id: str) -> ValidEvent:
    event_type = raw.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidEvent("type", f"is required; use one of {', '.join(EVENT_TYPES)}.")
    if event_type not in EVENT_TYPES:
        raise InvalidEvent("type", f"{event_type!r} is not a known event type; use one of {', '.join(EVENT_TYPES)}.")

    occurred_at = parse_datetime(raw.get("occurred_at"), "occurred_at")

    agent = raw.get("agent")
    if not isinstance(agent, dict):
        raise InvalidEvent("agent", 'is required as an object like {"id": "agt_123", "name": "Pricing SDR"}.')
    agent_id = _required_id(agent, "id", "agent.id")
    agent_name = _optional_text(agent, "name", "agent.name")

    event = ValidEvent(
        event_id=event_id,
        type=event_type,
        occurred_at=occurred_at,
        agent_id=agent_id,
        agent_name=agent_name,
        payload=raw,
    )
    event.agent_name = _fit_column(agent_name, 200, "agent.name", event)
    if event_type == "conversation.completed":
        event.conversation = _validate_conversation(raw.get("conversation"), event)
    else:
        event.meeting = _validate_meeting(raw.get("meeting"), event)
    return event


def _validate_conversation(conversation, event: ValidEvent) -> dict:
    if not isinstance(conversation, dict):
        raise InvalidEvent("conversation", "is required for conversation.completed events, as an object.")

    result = {
        "id": _required_id(conversation, "id", "conversation.id"),
        "started_at": parse_datetime(conversation.get("started_at"), "conversation.started_at"),
        "ended_at": parse_datetime(conversation.get("ended_at"), "conversation.ended_at"),
    }
    if result["ended_at"] < result["started_at"]:
        # Kept rather than rejected so the conversation is not lost; the
        # duration is written as 0.
        event.warnings.append(
            "conversation.ended_at is before conversation.started_at; the duration is recorded as 0 seconds."
        )

    visitor = conversation.get("visitor") or {}
    if not isinstance(visitor, dict):
        raise InvalidEvent("conversation.visitor", f"must be an object, got {_describe(visitor)}.")
    result["visitor"] = {
        key: _optional_text(visitor, key, f"conversation.visitor.{key}")
        for key in VISITOR_FIELDS
        if key != "email"
    }
    raw_email = visitor.get("email")
    result["raw_email"] = raw_email if isinstance(raw_email, str) else ""
    result["email"], result["email_problem"] = normalize_email(raw_email)
    if result["email_problem"] and raw_email not in (None, ""):
        # A conversation without an email is normal; one whose email is
        # unusable is a sender problem worth reporting back.
        event.warnings.append(
            f"conversation.visitor.email: {result['email_problem']} The conversation is stored without a Marketo lead."
        )

    for key in ("page_url", "landing_page_url", "referrer", "summary", "munchkin_cookie"):
        result[key] = _optional_text(conversation, key, f"conversation.{key}")

    attribution = conversation.get("attribution")
    if attribution is not None and not isinstance(attribution, dict):
        raise InvalidEvent("conversation.attribution", f"must be an object, got {_describe(attribution)}.")
    result["attribution"] = attribution or {}

    result["transcript"] = _validate_transcript(conversation.get("transcript"))

    meeting_status = conversation.get("meeting_status") or "not_booked"
    if meeting_status not in CONVERSATION_MEETING_STATUSES:
        raise InvalidEvent(
            "conversation.meeting_status",
            f"{meeting_status!r} is not one of {', '.join(CONVERSATION_MEETING_STATUSES)}.",
        )
    result["meeting_status"] = meeting_status

    analysis = conversation.get("post_call_analysis") or {}
    if not isinstance(analysis, dict):
        raise InvalidEvent("conversation.post_call_analysis", f"must be an object, got {_describe(analysis)}.")
    for key, value in analysis.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise InvalidEvent(
                f"conversation.post_call_analysis.{key}",
                f"must be a string, number or boolean, got {_describe(value)}.",
            )
    result["post_call_analysis"] = analysis
    return result


def _validate_transcript(transcript) -> list[dict]:
    if transcript is None:
        return []
    if not isinstance(transcript, list):
        raise InvalidEvent("conversation.transcript", f"must be a list of messages, got {_describe(transcript)}.")

    messages = []
    for index, message in enumerate(transcript):
        path = f"conversation.transcript[{index}]"
        if not isinstance(message, dict):
            raise InvalidEvent(path, f"must be an object, got {_describe(message)}.")
        role = message.get("role")
        if role not in ("visitor", "agent"):
            raise InvalidEvent(f"{path}.role", f"{role!r} is not 'visitor' or 'agent'.")
        text = message.get("text")
        if not isinstance(text, str):
            raise InvalidEvent(f"{path}.text", f"must be a string, got {_describe(text)}.")
        sent_at = message.get("sent_at")
        entry = {"role": role, "text": text}
        if sent_at is not None:
            entry["sent_at"] = parse_datetime(sent_at, f"{path}.sent_at", offset_required=False).isoformat()
        messages.append(entry)
    return messages


def _validate_meeting(meeting, event: ValidEvent) -> dict:
    if not isinstance(meeting, dict):
        raise InvalidEvent("meeting", f"is required for {event.type} events, as an object.")

    result = {"id": _required_id(meeting, "id", "meeting.id")}
    for key in ("booking_id", "conversation_id", "subject", "description", "conferencing_url"):
        result[key] = _optional_text(meeting, key, f"meeting.{key}")
    for key in ("booking_id", "conversation_id"):
        if len(result[key]) > MAX_ID_LENGTH:
            raise InvalidEvent(f"meeting.{key}", f"is longer than {MAX_ID_LENGTH} characters.")
    for key in ("start_at", "end_at"):
        value = meeting.get(key)
        result[key] = None if value in (None, "") else parse_datetime(value, f"meeting.{key}")
    if result["start_at"] and result["end_at"] and result["end_at"] < result["start_at"]:
        event.warnings.append("meeting.end_at is before meeting.start_at.")

    owner = meeting.get("owner") or {}
    if not isinstance(owner, dict):
        raise InvalidEvent("meeting.owner", f"must be an object, got {_describe(owner)}.")
    result["owner_name"] = _fit_column(_optional_text(owner, "name", "meeting.owner.name"), 200, "meeting.owner.name", event)
    result["owner_email"] = _fit_column(
        _optional_text(owner, "email", "meeting.owner.email"), 254, "meeting.owner.email", event
    )

    attendee = meeting.get("attendee") or {}
    if not isinstance(attendee, dict):
        raise InvalidEvent("meeting.attendee", f"must be an object, got {_describe(attendee)}.")
    result["attendee"] = {
        key: _optional_text(attendee, key, f"meeting.attendee.{key}")
        for key in ("first_name", "last_name", "company")
    }
    raw_email = attendee.get("email")
    result["attendee"]["raw_email"] = raw_email if isinstance(raw_email, str) else ""
    result["attendee_email"], result["attendee_email_problem"] = normalize_email(raw_email)

    status = meeting.get("status") or MEETING_STATUS_BY_TYPE[event.type]
    if status not in MEETING_STATUSES:
        raise InvalidEvent("meeting.status", f"{status!r} is not one of {', '.join(MEETING_STATUSES)}.")
    if status != MEETING_STATUS_BY_TYPE[event.type]:
        event.warnings.append(
            f"meeting.status {status!r} differs from the event type {event.type!r}; the event type is used."
        )
        status = MEETING_STATUS_BY_TYPE[event.type]
    result["status"] = status
    return result


def _required_id(container: dict, key: str, field_path: str) -> str:
    value = container.get(key)
    if isinstance(value, (int,)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(field_path, "is required as a non-empty string.")
    value = value.strip()
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent(field_path, f"is longer than {MAX_ID_LENGTH} characters.")
    return value


def _optional_text(container: dict, key: str, field_path: str) -> str:
    value = container.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidEvent(field_path, f"must be a string, got {_describe(value)}.")
    return str(value).strip()


def _fit_column(value: str, max_chars: int, field_path: str, event: ValidEvent) -> str:
    """Cut a value to the column that stores it; the event's payload keeps the full value."""
    if len(value) <= max_chars:
        return value
    event.warnings.append(f"{field_path} is longer than {max_chars} characters; it is stored cut to {max_chars}.")
    return value[: max_chars - 1] + "…"


def _quote(value: str, max_chars: int) -> str:
    """Return `value` quoted by repr(), at most `max_chars` plus two quotes long, cut with "…" where needed.

    repr() writes a control or format character as an escape of up to ten
    characters, so the value is cut until its quoted form fits.
    """
    if len(repr(value)) <= max_chars + 2:
        return repr(value)
    cut = value[: max_chars - 1]
    while len(repr(cut + "…")) > max_chars + 2:
        cut = cut[:-1]
    return repr(cut + "…")


def _unstorable(text: str) -> str:
    """Return what makes `text` unstorable, or '' when it can be stored."""
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired UTF-16 surrogate (such as \\ud800)"
    return ""


def _check_storable(raw: dict):
    """Raise InvalidEvent for a value no database column can hold, naming where it is.

    JSON parsers accept NUL characters and unpaired surrogates as \\u escapes,
    and Python's accepts NaN and Infinity, but PostgreSQL's text and jsonb
    reject NUL and NaN and UTF-8 can't encode a lone surrogate. The walk uses
    a stack, so a deeply nested value can't exhaust the recursion limit.
    """
    stack = [("event", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                problem = _unstorable(key)
                if problem:
                    raise InvalidEvent(path, f"has a key containing {problem}; remove it.")
                stack.append((key if path == "event" else f"{path}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str):
            problem = _unstorable(value)
            if problem:
                raise InvalidEvent(path, f"contains {problem}, which can't be stored; remove it.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidEvent(path, f"is {value}, which JSON does not allow; send a finite number or null.")


def _describe(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

