"""Building Add Custom Activities input for Docket Conversation and Docket Meeting Booked."""

from datetime import datetime, timezone

from agents.attribution import ATTRIBUTION_KEYS
from agents.models import Conversation, InboundEvent
from agents.sources import source_value
from integrations.marketo.assets import (
    CONVERSATION_ACTIVITY,
    MEETING_ACTIVITY,
    MEETING_SOURCE,
    analysis_attribute_api_name,
)
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.values import fit_activity_attributes, fit_value

MEETING_STATUS_LABELS = dict(Conversation.MeetingStatus.choices)

MEETING_ATTRIBUTION_API_NAMES = {
    "utm_source": "utmSource",
    "utm_medium": "utmMedium",
    "utm_campaign": "utmCampaign",
    "utm_content": "utmContent",
    "utm_term": "utmTerm",
    "click_id": "clickId",
    "click_id_type": "clickIdType",
}


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat()


def _attribute(api_name: str, value, data_type: str) -> dict | None:
    fitted = fit_value(value, data_type)
    if fitted is None or fitted == "":
        return None
    return {"apiName": api_name, "value": fitted}


def transcript_text(conversation: Conversation) -> str:
    lines = []
    for message in conversation.transcript:
        speaker = "Visitor" if message.get("role") == "visitor" else "Agent"
        lines.append(f"{speaker}: {message.get('text', '')}")
    return "\n".join(lines)


def conversation_activity(
    record: WritebackRecord, connection: MarketoConnection, lead_id: int, *, written_at: datetime
) -> dict:
    """Return the Docket Conversation activity for a record's conversation."""
    conversation = record.conversation
    agent = conversation.agent
    writeback = agent.writeback
    types = {spec.api_name: spec.data_type for spec in CONVERSATION_ACTIVITY.attributes}

    values = {
        "visitorEmail": conversation.visitor.email if conversation.visitor else None,
        "agentName": agent.name or agent.external_id,
        "agentId": agent.external_id,
        "conversationDuration": conversation.duration_seconds,
        "pageUrl": conversation.page_url,
        "conversationSummary": conversation.summary,
        "docketMeetingStatus": MEETING_STATUS_LABELS.get(conversation.meeting_status, "Not Booked"),
        "docketInteractionCount": conversation.interaction_count,
        "fullTranscript": transcript_text(conversation),
        "conversationStartTime": _timestamp(conversation.started_at),
        "conversationEndTime": _timestamp(conversation.ended_at),
        "updatedByDocket": _timestamp(written_at),
    }
    attributes = [_attribute(name, value, types[name]) for name, value in values.items()]

    analysis_types = {field.key: field.data_type for field in agent.analysis_fields.all()}
    for key in writeback.activity_fields:
        if key.startswith("pca:"):
            analysis_key = key[4:]
            data_type = analysis_types.get(analysis_key)
            if data_type is None:
                continue
            attributes.append(
                _attribute(analysis_attribute_api_name(analysis_key), source_value(key, conversation), data_type)
            )
            continue
        spec = CONVERSATION_ACTIVITY.optional.get(key)
        if spec is None:
            continue
        attributes.append(_attribute(spec.api_name, source_value(key, conversation), spec.data_type))

    attributes = [attribute for attribute in attributes if attribute is not None]
    fit_activity_attributes(attributes, ("fullTranscript", "conversationSummary"))
    return {
        "leadId": lead_id,
        "activityDate": _timestamp(conversation.ended_at),
        "activityTypeId": connection.conversation_activity_type_id,
        "primaryAttributeValue": conversation.external_id,
        "attributes": attributes,
    }


def meeting_activity(record: WritebackRecord, connection: MarketoConnection, lead_id: int) -> dict:
    """Return the Docket Meeting Booked activity for a record's meeting event."""
    event: InboundEvent = record.event
    snapshot = event.meeting_snapshot
    meeting = record.meeting
    conversation = meeting.conversation
    types = {spec.api_name: spec.data_type for spec in MEETING_ACTIVITY.attributes}

    values = {
        "bookingId": snapshot.get("booking_id"),
        "subject": snapshot.get("subject"),
        "description": snapshot.get("description"),
        "meetingStart": snapshot.get("start_at") or _timestamp(meeting.start_at),
        "meetingEnd": snapshot.get("end_at") or _timestamp(meeting.end_at),
        "meetingOwner": snapshot.get("owner_name"),
        "meetingStatus": snapshot.get("status"),
        "conferencingLink": snapshot.get("conferencing_url"),
        "meetingSource": MEETING_SOURCE,
        "conversationId": snapshot.get("conversation_id") or (conversation.external_id if conversation else None),
    }
    # Attribution comes from the booking conversation; a meeting whose
    # conversation never arrived is written without it.
    attribution = conversation.attribution if conversation else {}
    for key in ATTRIBUTION_KEYS:
        values[MEETING_ATTRIBUTION_API_NAMES[key]] = attribution.get(key)

    attributes = [_attribute(name, value, types[name]) for name, value in values.items()]
    attributes = [attribute for attribute in attributes if attribute is not None]
    fit_activity_attributes(attributes, ("description",))
    return {
        "leadId": lead_id,
        "activityDate": _timestamp(event.occurred_at),
        "activityTypeId": connection.meeting_activity_type_id,
        "primaryAttributeValue": meeting.external_id,
        "attributes": attributes,
    }


def activity_matches(record: WritebackRecord, activity: dict) -> bool:
    """True when an activity read back from Marketo is the one this record writes.

    Conversation activities are matched by Conversation ID (the primary
    attribute). A meeting has one activity per event, so its Meeting ID is
    matched together with the status and start that event wrote.
    """
    primary = str(activity.get("primaryAttributeValue") or "")
    if record.meeting_id is None:
        return primary == record.conversation.external_id

    if primary != record.meeting.external_id:
        return False
    attributes = {item.get("name") or item.get("apiName"): item.get("value") for item in activity.get("attributes", [])}
    snapshot = record.event.meeting_snapshot
    status = attributes.get("Meeting Status", attributes.get("meetingStatus"))
    if status is not None and status != snapshot.get("status"):
        return False
    start = attributes.get("Start", attributes.get("meetingStart"))
    if start and snapshot.get("start_at"):
        return _same_instant(start, snapshot["start_at"])
    return True


def _same_instant(left: str, right: str) -> bool:
    try:
        return datetime.fromisoformat(left.replace("Z", "+00:00")) == datetime.fromisoformat(
            right.replace("Z", "+00:00")
        )
    except ValueError:
        return left == right
