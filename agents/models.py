"""Customer workspaces, their Docket agents, and the events those agents send.

Ids that come from Docket (event, agent, conversation and meeting ids) are
unique within an organization, never globally.
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import models

INGEST_TOKEN_PREFIX = "dkt_"


def hash_ingest_token(token: str) -> str:
    """Return the stored form of a webhook ingest token.

    Tokens are 32 random bytes, so a plain SHA-256 is enough: there is no
    low-entropy secret for a slow hash to protect.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Organization(models.Model):
    """A customer workspace: its agents, its Marketo connection and its admins."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    ingest_token_hash = models.CharField(max_length=64, unique=True, editable=False)
    ingest_token_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name

    def issue_ingest_token(self) -> str:
        """Generate a new ingest token, store its hash and return it (shown once)."""
        token = INGEST_TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.ingest_token_hash = hash_ingest_token(token)
        return token

    def check_ingest_token(self, token: str) -> bool:
        return hmac.compare_digest(self.ingest_token_hash, hash_ingest_token(token))


class OrganizationMembership(models.Model):
    """Makes a user an admin of one organization's settings pages."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.user} in {self.organization.slug}"


class Agent(models.Model):
    """A Docket agent, known by the id Docket gives it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="agents")
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    # True when the agent was first seen in an event rather than configured;
    # such agents start with writeback off so that no event is lost.
    created_from_event = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization", "name", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"], name="agent_unique_per_org"
            )
        ]

    def __str__(self):
        return self.name or self.external_id


class AgentWriteback(models.Model):
    """An agent's Marketo writeback switches and its optional activity fields."""

    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, related_name="writeback")
    marketo_enabled = models.BooleanField("Marketo", default=False)
    lead_sync = models.BooleanField("Lead Sync", default=False)
    activity_sync = models.BooleanField("Activity Sync", default=False)
    program_enrollment = models.BooleanField("Program enrolment", default=False)
    # Optional Docket Conversation attributes this agent writes, by their
    # configuration key (`utm_source`, `click_id`, `pca:budget_range`, ...).
    activity_fields = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Writeback for {self.agent}"

    @property
    def writes_leads(self) -> bool:
        return self.marketo_enabled and self.lead_sync

    @property
    def writes_activities(self) -> bool:
        return self.marketo_enabled and self.activity_sync

    @property
    def enrolls(self) -> bool:
        return self.marketo_enabled and self.program_enrollment


class PostCallAnalysisField(models.Model):
    """A value Docket's post-call analysis extracts from a conversation."""

    class DataType(models.TextChoices):
        STRING = "string", "String"
        TEXT = "text", "Text"
        INTEGER = "integer", "Integer"
        FLOAT = "float", "Float"
        BOOLEAN = "boolean", "Boolean"
        DATE = "date", "Date"
        DATETIME = "datetime", "Datetime"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="analysis_fields")
    key = models.SlugField(max_length=64, allow_unicode=False)
    label = models.CharField(max_length=100)
    data_type = models.CharField(max_length=16, choices=DataType.choices, default=DataType.STRING)

    class Meta:
        ordering = ["agent", "key"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "key"], name="analysis_field_unique_per_agent")
        ]

    def __str__(self):
        return f"{self.label} ({self.key})"


class FieldMapping(models.Model):
    """One lead field update: a conversation value written to a Marketo lead field."""

    class Mode(models.TextChoices):
        OVERWRITE = "overwrite", "Overwrite"
        FILL_IF_EMPTY = "fill_if_empty", "Fill if empty"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="field_mappings")
    source = models.CharField(max_length=100)
    marketo_field = models.CharField("Marketo field", max_length=100)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.OVERWRITE)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["agent", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "marketo_field"], name="field_mapping_unique_target_per_agent"
            )
        ]

    def __str__(self):
        return f"{self.source} → {self.marketo_field} ({self.get_mode_display()})"


class Visitor(models.Model):
    """A person who chatted with Docket, known by normalized email within an organization.

    First and latest touch follow the conversations' `started_at`, so they stay
    right when conversations arrive out of order.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="visitors")
    email = models.CharField(max_length=254)
    marketo_lead_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    first_conversation = models.ForeignKey(
        "Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    latest_conversation = models.ForeignKey(
        "Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_interaction_at = models.DateTimeField(null=True, blank=True)
    latest_interaction_at = models.DateTimeField(null=True, blank=True)
    conversation_count = models.PositiveIntegerField(default=0)
    # Per lead field: the value this product last wrote and the `started_at`
    # of the conversation it came from, so an older conversation never
    # overwrites a newer one's value.
    lead_field_writes = models.JSONField(default=dict, blank=True)
    # Munchkin cookies already associated with the lead.
    associated_cookies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "email"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], name="visitor_unique_email_per_org")
        ]

    def __str__(self):
        return self.email


class Conversation(models.Model):
    """A completed chat between a visitor and a Docket agent."""

    class MeetingStatus(models.TextChoices):
        NOT_BOOKED = "not_booked", "Not Booked"
        BOOKED = "booked", "Booked"
        RESCHEDULED = "rescheduled", "Rescheduled"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="conversations"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="conversations")
    external_id = models.CharField("Conversation ID", max_length=200)
    visitor = models.ForeignKey(
        Visitor, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    # The email exactly as received, and why it can't be used for a lead.
    raw_email = models.CharField(max_length=500, blank=True)
    email_problem = models.CharField(max_length=200, blank=True)
    visitor_fields = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    page_url = models.TextField(blank=True)
    landing_page_url = models.TextField(blank=True)
    referrer = models.TextField(blank=True)
    # Resolved UTM and click-id values, and where each came from
    # (`attribution`, `landing_page_url` or `page_url`).
    attribution = models.JSONField(default=dict, blank=True)
    attribution_sources = models.JSONField(default=dict, blank=True)
    munchkin_cookie = models.CharField(max_length=500, blank=True)
    summary = models.TextField(blank=True)
    transcript = models.JSONField(default=list, blank=True)
    meeting_status = models.CharField(
        max_length=16, choices=MeetingStatus.choices, default=MeetingStatus.NOT_BOOKED
    )
    post_call_analysis = models.JSONField(default=dict, blank=True)
    # The visitor's conversations up to and including this one, by start time.
    interaction_count = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"], name="conversation_unique_per_org"
            )
        ]
        indexes = [models.Index(fields=["organization", "started_at"])]

    def __str__(self):
        return self.external_id

    @property
    def duration_seconds(self) -> int:
        return max(0, int((self.ended_at - self.started_at).total_seconds()))


class Meeting(models.Model):
    """A meeting booked through Docket, in its latest known state."""

    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        RESCHEDULED = "rescheduled", "Rescheduled"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="meetings")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="meetings")
    external_id = models.CharField("Meeting ID", max_length=200)
    booking_id = models.CharField(max_length=200, blank=True)
    conversation_external_id = models.CharField(max_length=200, blank=True)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="meetings"
    )
    subject = models.TextField(blank=True)
    description = models.TextField(blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    owner_name = models.CharField(max_length=200, blank=True)
    owner_email = models.CharField(max_length=254, blank=True)
    attendee = models.JSONField(default=dict, blank=True)
    conferencing_url = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOOKED)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="meeting_unique_per_org")
        ]

    def __str__(self):
        return self.external_id


class InboundEvent(models.Model):
    """A Docket event as received; `event_id` makes redelivery a no-op."""

    class Type(models.TextChoices):
        CONVERSATION_COMPLETED = "conversation.completed"
        MEETING_BOOKED = "meeting.booked"
        MEETING_RESCHEDULED = "meeting.rescheduled"
        MEETING_CANCELLED = "meeting.cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=32, choices=Type.choices)
    occurred_at = models.DateTimeField()
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="events")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    meeting = models.ForeignKey(
        Meeting, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    # The meeting as this event described it: a reschedule and a cancel each
    # write their own activity, so the activity is built from this snapshot.
    meeting_snapshot = models.JSONField(default=dict, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "event_id"], name="event_unique_per_org")
        ]

    def __str__(self):
        return self.event_id

