"""Values a conversation offers to lead field updates, activity fields and enrollment context.

Source keys are part of the writeback configuration format: `visitor.<field>`,
the activity field keys (`utm_source`, `click_id`, ...), `first_touch.<key>`,
`summary` and `pca:<key>`.
"""

from datetime import datetime

from agents.attribution import ATTRIBUTION_KEYS
from agents.models import Conversation

VISITOR_SOURCE_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country")

# Marketo lead field each visitor field is written to when Lead Sync is on.
VISITOR_LEAD_FIELDS = {
    "email": "email",
    "first_name": "firstName",
    "last_name": "lastName",
    "company": "company",
    "title": "title",
    "phone": "phone",
    "country": "country",
}

# Optional Docket Conversation activity fields, by configuration key.
OPTIONAL_ACTIVITY_FIELD_KEYS = ATTRIBUTION_KEYS + (
    "first_interaction",
    "latest_interaction",
    "meeting_date",
    "meeting_owner",
)

# The data type each source produces, for checking against a lead field's type.
SOURCE_DATA_TYPES = {
    **{f"visitor.{key}": "string" for key in VISITOR_SOURCE_FIELDS},
    "visitor.email": "email",
    "visitor.phone": "phone",
    **{key: "string" for key in ATTRIBUTION_KEYS},
    **{f"first_touch.{key}": "string" for key in ATTRIBUTION_KEYS},
    "first_interaction": "datetime",
    "latest_interaction": "datetime",
    "meeting_date": "datetime",
    "meeting_owner": "string",
    "summary": "text",
}


def static_source_keys() -> list[str]:
    """Return every source key that doesn't depend on the agent's post-call analysis fields."""
    return list(SOURCE_DATA_TYPES)


def source_origin(source: str, conversation: Conversation) -> Conversation:
    """Return the conversation a source's value comes from (the first one for `first_touch.*`)."""
    if source.startswith("first_touch.") and conversation.visitor_id:
        first = conversation.visitor.first_conversation
        if first is not None:
            return first
    return conversation


def source_value(source: str, conversation: Conversation):
    """Return the value of `source` for this conversation, or None when it has none."""
    visitor = conversation.visitor

    if source.startswith("visitor."):
        key = source.split(".", 1)[1]
        if key == "email":
            return visitor.email if visitor else None
        return conversation.visitor_fields.get(key) or None

    if source.startswith("first_touch."):
        key = source.split(".", 1)[1]
        return source_origin(source, conversation).attribution.get(key) or None

    if source in ATTRIBUTION_KEYS:
        return conversation.attribution.get(source) or None

    if source == "first_interaction":
        return _iso(visitor.first_interaction_at) if visitor else None
    if source == "latest_interaction":
        return _iso(visitor.latest_interaction_at) if visitor else None

    if source in ("meeting_date", "meeting_owner"):
        meeting = conversation.meetings.order_by("-updated_at").first()
        if meeting is None:
            return None
        if source == "meeting_date":
            return _iso(meeting.start_at)
        return meeting.owner_name or None

    if source == "summary":
        return conversation.summary or None

    if source.startswith("pca:"):
        value = conversation.post_call_analysis.get(source[4:])
        return None if value in (None, "") else value

    raise ValueError(f"Unknown source {source!r}.")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
