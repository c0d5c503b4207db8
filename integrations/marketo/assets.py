"""The Marketo assets this product creates, with names fixed once in use.

Once an activity type is approved and in use, Marketo won't let its name,
apiName, trigger, filter or primary attribute change, so these definitions
are part of the product's outside interface. Connection setup adopts an
existing asset only when it matches them.
"""

from dataclasses import dataclass, field

FOLDER_NAME = "Docket"
FOLDER_DESCRIPTION = (
    "Created by Docket. The Docket Engagement program will be used to track all "
    "interactions with Docket Agents."
)
PROGRAM_NAME = "Docket Engagement"
PROGRAM_DESCRIPTION = "Tracks visitors who talked with Docket agents."
CHANNEL_NAME = "Docket"
CHANNEL_STATUS_ENGAGED = "Engaged"
CHANNEL_STATUS_MEETING_BOOKED = "Meeting Booked"
MEETING_SOURCE = "Docket"

# Marketo's cap on attributes per custom activity type, counted with the
# primary attribute as the setup guide counts it. Marketo documents "0-20
# secondary attributes" in one place and "20 attributes" in another; counting
# the primary keeps the product inside both readings.
MAX_ACTIVITY_ATTRIBUTES = 20


@dataclass(frozen=True)
class AttributeSpec:
    api_name: str
    name: str
    data_type: str
    description: str = ""

    def as_marketo(self, *, is_primary: bool = False) -> dict:
        payload = {"apiName": self.api_name, "name": self.name, "dataType": self.data_type}
        if self.description:
            payload["description"] = self.description
        if is_primary:
            payload["isPrimary"] = True
        return payload


@dataclass(frozen=True)
class ActivityTypeSpec:
    api_name: str
    name: str
    trigger_name: str
    filter_name: str
    description: str
    primary: AttributeSpec
    # Secondary attributes every installation has.
    attributes: tuple[AttributeSpec, ...]
    # Secondary attributes an agent may add, by configuration key.
    optional: dict[str, AttributeSpec] = field(default_factory=dict)

    def create_payload(self) -> dict:
        return {
            "apiName": self.api_name,
            "name": self.name,
            "triggerName": self.trigger_name,
            "filterName": self.filter_name,
            "description": self.description,
            "primaryAttribute": self.primary.as_marketo(),
        }

    @property
    def mandatory_count(self) -> int:
        """Attributes always present, primary included."""
        return 1 + len(self.attributes)


def _utm_and_click(description_suffix: str) -> dict[str, AttributeSpec]:
    return {
        "utm_source": AttributeSpec("utmSource", "UTM Source", "string", description_suffix),
        "utm_medium": AttributeSpec("utmMedium", "UTM Medium", "string", description_suffix),
        "utm_campaign": AttributeSpec("utmCampaign", "UTM Campaign", "string", description_suffix),
        "utm_content": AttributeSpec("utmContent", "UTM Content", "string", description_suffix),
        "utm_term": AttributeSpec("utmTerm", "UTM Term", "string", description_suffix),
        "click_id": AttributeSpec("clickId", "Click ID", "string", description_suffix),
        "click_id_type": AttributeSpec("clickIdType", "Click ID Type", "string", "Ad network of the click id"),
    }


CONVERSATION_ACTIVITY = ActivityTypeSpec(
    api_name="docketConversation",
    name="Docket Conversation",
    trigger_name="Has Docket Conversation",
    filter_name="Had Docket Conversation",
    description="A visitor's conversation with a Docket agent",
    primary=AttributeSpec("conversationId", "Conversation ID", "string"),
    attributes=(
        AttributeSpec("visitorEmail", "Visitor Email", "email"),
        AttributeSpec("agentName", "Agent Name", "string"),
        AttributeSpec("agentId", "Agent ID", "string"),
        AttributeSpec("conversationDuration", "Conversation Duration", "integer", "Seconds"),
        AttributeSpec("pageUrl", "Page URL", "link"),
        AttributeSpec("conversationSummary", "Conversation Summary", "text"),
        AttributeSpec("docketMeetingStatus", "Docket Meeting Status", "string"),
        AttributeSpec("docketInteractionCount", "Docket Interaction Count", "integer"),
        AttributeSpec("fullTranscript", "Full Transcript", "text"),
        AttributeSpec("conversationStartTime", "Conversation Start Time", "datetime"),
        AttributeSpec("conversationEndTime", "Conversation End Time", "datetime"),
        AttributeSpec("updatedByDocket", "Updated by Docket", "datetime"),
    ),
    optional={
        **_utm_and_click("This conversation's value"),
        "first_interaction": AttributeSpec(
            "docketFirstInteraction", "Docket First Interaction", "datetime",
            "Start of the visitor's earliest conversation known",
        ),
        "latest_interaction": AttributeSpec(
            "docketLatestInteraction", "Docket Latest Interaction", "datetime",
            "Start of the visitor's latest conversation known",
        ),
        "meeting_date": AttributeSpec("docketMeetingDate", "Docket Meeting Date", "datetime"),
        "meeting_owner": AttributeSpec("docketMeetingOwner", "Docket Meeting Owner", "string"),
    },
)

MEETING_ACTIVITY = ActivityTypeSpec(
    api_name="docketMeetingBooked",
    name="Docket Meeting Booked",
    trigger_name="Has Docket Meeting Booked",
    filter_name="Had Docket Meeting Booked",
    description="A meeting booked, rescheduled or cancelled through a Docket agent",
    primary=AttributeSpec("meetingId", "Meeting ID", "string"),
    attributes=(
        AttributeSpec("bookingId", "Booking ID", "string"),
        AttributeSpec("subject", "Subject", "string"),
        AttributeSpec("description", "Description", "text"),
        AttributeSpec("meetingStart", "Start", "datetime"),
        AttributeSpec("meetingEnd", "End", "datetime"),
        AttributeSpec("meetingOwner", "Meeting Owner", "string"),
        AttributeSpec("meetingStatus", "Meeting Status", "string"),
        AttributeSpec("conferencingLink", "Conferencing Link", "link"),
        AttributeSpec("meetingSource", "Meeting Source", "string"),
        AttributeSpec("conversationId", "Conversation ID", "string"),
        *_utm_and_click("From the booking conversation").values(),
    ),
)

ACTIVITY_TYPES = (CONVERSATION_ACTIVITY, MEETING_ACTIVITY)

# Marketo data types for post-call analysis fields, by the field's data type.
ANALYSIS_DATA_TYPES = {
    "string": "string",
    "text": "text",
    "integer": "integer",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}


def analysis_attribute_api_name(key: str) -> str:
    """Return the attribute apiName for a post-call analysis key: `budget_range` → `pcaBudgetRange`."""
    parts = [part for part in key.replace("-", "_").split("_") if part]
    return "pca" + "".join(part[:1].upper() + part[1:] for part in parts)


def analysis_attribute(key: str, label: str, data_type: str) -> AttributeSpec:
    return AttributeSpec(
        analysis_attribute_api_name(key),
        label,
        ANALYSIS_DATA_TYPES[data_type],
        f"Post-call analysis: {key}",
    )
