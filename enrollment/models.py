"""Enrollment rules, the LLM's decisions on custom criteria, and known program statuses."""

from django.core.exceptions import ValidationError
from django.db import models

from agents.models import Agent, Conversation
from integrations.models import MarketoConnection

MAX_RULES_PER_AGENT = 5
DEFAULT_PROGRAM_NAME = "Docket Engagement"
TOO_MANY_RULES_MESSAGE = "Each agent can have up to 5 program enrollment rules."


class EnrollmentRule(models.Model):
    """Enrolls an agent's visitors into a program at a status when its trigger fires."""

    class Trigger(models.TextChoices):
        CONVERSATION_COMPLETED = "conversation_completed", "On conversation completed"
        MEETING_BOOKED = "meeting_booked", "On meeting booked"
        CUSTOM_CRITERIA = "custom_criteria", "Custom criteria"

    # The setup guide's default program status per trigger.
    DEFAULT_STATUS = {
        Trigger.CONVERSATION_COMPLETED: "Engaged",
        Trigger.MEETING_BOOKED: "Meeting Booked",
        Trigger.CUSTOM_CRITERIA: "Engaged",
    }

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="enrollment_rules")
    # 1 to 5: the unique slot is the database's guarantee of at most 5 rules.
    slot = models.PositiveSmallIntegerField()
    rule_key = models.CharField("Rule ID", max_length=100)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    criteria = models.TextField(blank=True)
    # The program as configured (a name or a numeric id) and as resolved in Marketo.
    program = models.CharField(max_length=255, default=DEFAULT_PROGRAM_NAME)
    program_id = models.BigIntegerField(null=True, blank=True)
    status_name = models.CharField("Status", max_length=200)
    # Rises when `criteria` changes, so earlier LLM decisions are not reused.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "slot"], name="enrollment_rule_unique_slot"),
            models.UniqueConstraint(fields=["agent", "rule_key"], name="enrollment_rule_unique_key"),
            models.CheckConstraint(
                condition=models.Q(slot__gte=1, slot__lte=MAX_RULES_PER_AGENT),
                name="enrollment_rule_slot_at_most_5",
            ),
        ]

    def __str__(self):
        return f"{self.get_trigger_display()} → {self.program} at {self.status_name}"

    def clean(self):
        if self.trigger == self.Trigger.CUSTOM_CRITERIA and not self.criteria.strip():
            raise ValidationError({"criteria": "Custom criteria rules need a prompt describing when to enroll."})
        if self._state.adding:
            existing = EnrollmentRule.objects.filter(agent_id=self.agent_id).count()
            if existing >= MAX_RULES_PER_AGENT:
                raise ValidationError(TOO_MANY_RULES_MESSAGE)


class EnrollmentDecision(models.Model):
    """The LLM's judgement of one custom-criteria rule version on one conversation."""

    class Outcome(models.TextChoices):
        ENROLL = "enroll", "Enroll"
        DO_NOT_ENROLL = "do_not_enroll", "Don't enroll"
        NOT_EVALUATED = "not_evaluated", "Not evaluated"
        ERROR = "error", "Error"

    rule = models.ForeignKey(EnrollmentRule, on_delete=models.CASCADE, related_name="decisions")
    rule_version = models.PositiveIntegerField()
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="enrollment_decisions"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "rule_version", "conversation"], name="decision_unique_per_rule_version"
            )
        ]

    def __str__(self):
        return f"{self.get_outcome_display()} for {self.conversation} (rule {self.rule_id} v{self.rule_version})"


class ProgramMembership(models.Model):
    """The highest program status this product has recorded for a lead.

    Used to skip a status write locally when the lead is already at the same
    or a later step, and to explain why a lead was or wasn't enrolled.
    """

    connection = models.ForeignKey(
        MarketoConnection, on_delete=models.CASCADE, related_name="program_memberships"
    )
    program_id = models.BigIntegerField()
    marketo_lead_id = models.BigIntegerField()
    status_name = models.CharField(max_length=200)
    step = models.IntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "program_id", "marketo_lead_id"], name="membership_unique"
            )
        ]

    def __str__(self):
        return f"lead {self.marketo_lead_id} in program {self.program_id}: {self.status_name}"
