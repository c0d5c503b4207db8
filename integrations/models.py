"""The Marketo connection, the writeback queue of record, and API usage accounting."""

import re

from django.core.exceptions import ValidationError
from django.db import models

from agents.models import Agent, Conversation, InboundEvent, Meeting, Organization
from integrations.encryption import decrypt_secret, encrypt_secret

MUNCHKIN_ID_PATTERN = re.compile(r"^\d{3}-[A-Z]{3}-\d{3}$")


def validate_munchkin_id(value: str):
    if not MUNCHKIN_ID_PATTERN.match(value or ""):
        raise ValidationError(
            f"Munchkin Account ID {value!r} is invalid. It looks like 123-ABC-456; "
            "find it in Marketo under Admin → Munchkin."
        )


class MarketoConnection(models.Model):
    """One organization's Marketo instance, its credentials and the assets set up in it."""

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", "Not connected"
        CONNECTED = "connected", "Connected"
        NEEDS_ATTENTION = "needs_attention", "Needs attention"
        DISCONNECTED = "disconnected", "Disconnected"

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="marketo_connection"
    )
    munchkin_id = models.CharField(
        "Munchkin Account ID", max_length=11, validators=[validate_munchkin_id]
    )
    client_id = models.CharField("Client ID", max_length=200)
    client_secret_encrypted = models.TextField(editable=False)
    # Scheme, host and port only; staff-only, checked against MARKETO_ALLOWED_BASE_URLS.
    base_url_override = models.CharField("Base URL override", max_length=200, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED)
    status_message = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    usage_warning = models.TextField(blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    # Ids Marketo returned for the assets the connection flow created or adopted.
    folder_id = models.BigIntegerField(null=True, blank=True)
    program_id = models.BigIntegerField(null=True, blank=True)
    program_type = models.CharField(max_length=32, blank=True)
    channel_name = models.CharField(max_length=200, blank=True)
    conversation_activity_type_id = models.BigIntegerField(null=True, blank=True)
    meeting_activity_type_id = models.BigIntegerField(null=True, blank=True)

    # API budget. Marketo's defaults: 50,000 calls a day, 100 calls per 20 s
    # and 10 concurrent calls per instance, shared with every integration;
    # Adobe recommends at most 50 per 20 s and 5 concurrent for one integration.
    daily_quota = models.PositiveIntegerField(default=50_000)
    docket_quota_percent = models.PositiveSmallIntegerField(
        "Docket's share of the daily quota (%)", default=50
    )
    rate_limit_calls = models.PositiveSmallIntegerField("Calls per window", default=50)
    rate_limit_window_seconds = models.PositiveSmallIntegerField("Window (seconds)", default=20)
    max_concurrent_calls = models.PositiveSmallIntegerField(default=5)

    # Work pauses (without failing) until this time: the quota day's end after
    # a 607, or indefinitely while the connection needs attention.
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)

    # Flush lease: one worker at a time writes a connection's batches.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    # Cached Marketo metadata: {"fetched_at": iso, "data": ...} per key.
    metadata_cache = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate_limit_calls__gte=1, rate_limit_calls__lte=100),
                name="connection_rate_limit_within_marketo_cap",
            ),
            models.CheckConstraint(
                condition=models.Q(max_concurrent_calls__gte=1, max_concurrent_calls__lte=10),
                name="connection_concurrency_within_marketo_cap",
            ),
            models.CheckConstraint(
                condition=models.Q(docket_quota_percent__gte=1, docket_quota_percent__lte=100),
                name="connection_quota_share_is_percent",
            ),
        ]

    def __str__(self):
        return f"Marketo {self.munchkin_id} for {self.organization.slug}"

    def set_client_secret(self, secret: str):
        self.client_secret_encrypted = encrypt_secret(secret)

    def get_client_secret(self) -> str:
        return decrypt_secret(self.client_secret_encrypted)

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    @property
    def base_url(self) -> str:
        return self.base_url_override or f"https://{self.munchkin_id}.mktorest.com"

    @property
    def instance_key(self) -> str:
        """Key of the Marketo instance for rate limits shared by every connection to it."""
        return self.base_url_override or self.munchkin_id

    @property
    def daily_budget(self) -> int:
        return self.daily_quota * self.docket_quota_percent // 100


class WritebackRecord(models.Model):
    """One write to Marketo for one event: the queue of record.

    A task carries only ids. A worker claims pending records, sends them in
    batches and records the outcome here, so work lost with a worker or a
    broker message is found again by the periodic sweep.
    """

    class Action(models.TextChoices):
        LEAD = "lead", "Lead sync"
        ACTIVITY = "activity", "Activity"
        ENROLLMENT = "enrollment", "Program enrollment"
        ASSOCIATE = "associate", "Munchkin association"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed (dead letter)"

    class Priority(models.IntegerChoices):
        LIVE = 0, "Live"
        BACKFILL = 1, "Backfill"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="writeback_records"
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="writeback_records")
    event = models.ForeignKey(
        InboundEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="writeback_records"
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="writeback_records"
    )
    meeting = models.ForeignKey(
        Meeting, null=True, blank=True, on_delete=models.CASCADE, related_name="writeback_records"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    # Identity of the write, unique per organization, so a replayed event or
    # a second backfill never queues the same write twice.
    dedupe_key = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.LIVE)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        "WritebackBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="records"
    )
    email = models.CharField(max_length=254, blank=True, db_index=True)
    marketo_lead_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    marketo_guid = models.CharField("Marketo activity GUID", max_length=64, blank=True)
    # Enrollment target, resolved when the record is queued.
    enrollment_rule = models.ForeignKey(
        "enrollment.EnrollmentRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    program_id = models.BigIntegerField(null=True, blank=True)
    program_status = models.CharField(max_length=200, blank=True)
    # Why the record was skipped or failed, in words a customer can act on.
    last_error = models.TextField(blank=True)
    last_error_code = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedupe_key"], name="writeback_record_unique_write"
            )
        ]
        indexes = [
            models.Index(fields=["organization", "status", "action", "created_at"]),
            models.Index(fields=["status", "not_before"]),
        ]

    def __str__(self):
        return f"{self.get_action_display()} {self.dedupe_key} ({self.status})"


class WritebackBatch(models.Model):
    """One Marketo write call, marked in flight before it is sent.

    A batch still in flight after a crash or a lost response has an unclear
    outcome: its records are reconciled against Marketo before any is resent.
    """

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        DONE = "done", "Done"
        RECONCILED = "reconciled", "Reconciled"

    connection = models.ForeignKey(
        MarketoConnection, on_delete=models.CASCADE, related_name="batches"
    )
    action = models.CharField(max_length=16, choices=WritebackRecord.Action.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_FLIGHT)
    record_count = models.PositiveIntegerField(default=0)
    lead_ids = models.JSONField(default=list, blank=True)
    activity_type_ids = models.JSONField(default=list, blank=True)
    sent_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at"]
        indexes = [models.Index(fields=["connection", "status"])]

    def __str__(self):
        return f"{self.action} batch {self.pk} ({self.status})"


class ApiUsageDay(models.Model):
    """Marketo calls this product made on one Marketo quota day (midnight US Central)."""

    connection = models.ForeignKey(MarketoConnection, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    calls = models.PositiveIntegerField(default=0)
    # Calls that failed with 601, 602, 604, 605, 608 or 611, which Marketo doesn't count.
    uncounted_calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "day"], name="usage_day_unique")
        ]

    def __str__(self):
        return f"{self.connection.munchkin_id} {self.day}: {self.calls}"


class RateLimitSlot(models.Model):
    """A Marketo call started (or about to start) against an instance.

    The database rate limiter counts these to keep every worker process
    within the calls-per-window and concurrent-calls limits.
    """

    instance_key = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # A slot whose process died is treated as finished after this time.
    lease_expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["instance_key", "started_at"])]


class RateLimitLock(models.Model):
    """One row per Marketo instance, locked while a slot is taken (PostgreSQL row lock)."""

    instance_key = models.CharField(max_length=200, unique=True)


class SharedCacheEntry(models.Model):
    """A row of the database cache that web processes share when there is no Redis.

    Django's DatabaseCache reads and writes this table directly. The
    webhook's rate limit and the sign-in lockout count in it, so every
    process reads the same counts.
    """

    cache_key = models.CharField(max_length=255, primary_key=True)
    value = models.TextField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "docket_shared_cache"


class AuditLogEntry(models.Model):
    """A configuration change: who made it, when, and what changed."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_log"
    )
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_repr = models.CharField(max_length=300)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit log entries"

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_repr}"
