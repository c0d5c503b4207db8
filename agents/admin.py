"""Staff admin for organizations, agents and the events Docket sent.

An agent's change page saves through the same checks as `apply_config`.
Before anything is written, the agent's whole configuration (the form and
every inline) is validated by `validate_agent_config` and checked against
the live Marketo instance by `MarketoConfigChecks`. So the 20-attribute cap,
lead fields, programs and statuses hold here exactly as in the JSON command
and the settings pages.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join

from agents.models import (
    Agent,
    AgentWriteback,
    Conversation,
    FieldMapping,
    InboundEvent,
    Meeting,
    Organization,
    OrganizationMembership,
    PostCallAnalysisField,
    Visitor,
)
from agents.sources import OPTIONAL_ACTIVITY_FIELD_KEYS
from agents.writeback_config import TOO_MANY_RULES_MESSAGE, export_config, validate_agent_config
from enrollment.models import MAX_RULES_PER_AGENT, EnrollmentRule
from integrations.admin import (
    MarketoConnectionInline,
    ReadOnlyAdminMixin,
    connection_audit_changes,
    run_connection_action,
    secret_state,
)
from integrations.audit import record_change
from integrations.marketo.assets import CONVERSATION_ACTIVITY
from integrations.marketo.connect import check_connection, run_setup
from integrations.models import MarketoConnection

# --- Organizations -------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ("user",)
    verbose_name = "customer admin"
    verbose_name_plural = "customer admins (sign in to the settings pages)"


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "connection_status", "connection_secret", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("ingest_token_rotated_at", "created_at")
    inlines = [MarketoConnectionInline, MembershipInline]
    actions = ["test_connection", "run_setup_again"]

    @admin.display(description="Marketo")
    def connection_status(self, organization):
        connection = getattr(organization, "marketo_connection", None)
        return connection.get_status_display() if connection else "Not connected"

    @admin.display(description="Client Secret")
    def connection_secret(self, organization):
        connection = getattr(organization, "marketo_connection", None)
        return secret_state(connection) if connection else "not set"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("marketo_connection")

    def save_model(self, request, obj, form, change):
        token = None
        if not change:
            token = obj.issue_ingest_token()
        super().save_model(request, obj, form, change)
        if token:
            # The token is stored only as a hash, so this is the one time it can be shown.
            self.message_user(
                request,
                f"Webhook ingest token for {obj.slug} (shown once; give it to Docket): {token}",
                messages.WARNING,
            )

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is not MarketoConnection:
            return
        for connection_form in formset.forms:
            if connection_form.has_changed() and connection_form.instance.pk:
                record_change(
                    form.instance, request.user.get_username(), "admin.change_connection",
                    "MarketoConnection", str(connection_form.instance), connection_audit_changes(connection_form),
                )

    def _connections(self, queryset):
        return MarketoConnection.objects.filter(organization__in=queryset).select_related("organization")

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        run_connection_action(self, request, self._connections(queryset), check_connection, "Test connection")

    @admin.action(description="Run setup again")
    def run_setup_again(self, request, queryset):
        run_connection_action(self, request, self._connections(queryset), run_setup, "Setup")


@admin.register(OrganizationMembership)
class OrganizationMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("user__username", "user__email", "organization__slug")
    autocomplete_fields = ("user", "organization")


# --- Agents -----------------------------------------------------------------------

class AgentWritebackForm(forms.ModelForm):
    activity_fields = forms.MultipleChoiceField(
        label="Optional activity fields",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=(
            "Written on the Docket Conversation activity besides the 13 mandatory fields. "
            "Post-call analysis fields appear here once saved."
        ),
    )

    class Meta:
        model = AgentWriteback
        fields = ["marketo_enabled", "lead_sync", "activity_sync", "program_enrollment", "activity_fields"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(key, CONVERSATION_ACTIVITY.optional[key].name) for key in OPTIONAL_ACTIVITY_FIELD_KEYS]
        agent_id = self.instance.agent_id
        if agent_id:
            analysis = PostCallAnalysisField.objects.filter(agent_id=agent_id)
            choices.extend((f"pca:{item.key}", f"Post-call analysis: {item.label}") for item in analysis)
        self.fields["activity_fields"].choices = choices


class CheckedInlineFormSet(BaseInlineFormSet):
    """An agent inline formset that registers with the change form's AgentConfigCheck.

    `AgentAdmin.get_formset_kwargs` passes the same check to every inline
    formset of one request, so the check can read all of them when it runs.
    """

    def __init__(self, *args, config_check=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config_check = config_check
        if config_check is not None:
            config_check.add(self)


class AgentWritebackFormSet(CheckedInlineFormSet):
    """The writeback inline, whose clean() checks the agent's whole configuration before any save."""

    def clean(self):
        super().clean()
        if self.config_check is not None:
            self.config_check.run()


class AgentWritebackInline(admin.StackedInline):
    model = AgentWriteback
    form = AgentWritebackForm
    formset = AgentWritebackFormSet
    can_delete = False
    max_num = 1
    min_num = 1
    verbose_name = "Marketo writeback"
    verbose_name_plural = "Marketo writeback"


class PostCallAnalysisFieldInline(admin.TabularInline):
    model = PostCallAnalysisField
    formset = CheckedInlineFormSet
    extra = 0


class FieldMappingInline(admin.TabularInline):
    model = FieldMapping
    formset = CheckedInlineFormSet
    extra = 0
    fields = ("position", "source", "marketo_field", "mode")
    verbose_name = "field update"
    verbose_name_plural = "field updates (lead object)"


class EnrollmentRuleForm(forms.ModelForm):
    class Meta:
        model = EnrollmentRule
        fields = ["rule_key", "trigger", "criteria", "program", "status_name"]
        help_texts = {"rule_key": "Leave blank to generate one from the trigger."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule_key"].required = False


class EnrollmentRuleFormSet(CheckedInlineFormSet):
    """At most 5 rules; new rules take the lowest free slot, which the database keeps unique."""

    # BaseFormSet merges default_error_messages along the class hierarchy.
    default_error_messages = {"too_many_forms": TOO_MANY_RULES_MESSAGE}

    def save_new(self, form, commit=True):
        rule = form.save(commit=False)
        used = set(EnrollmentRule.objects.filter(agent=self.instance).values_list("slot", flat=True))
        rule.slot = next(slot for slot in range(1, MAX_RULES_PER_AGENT + 1) if slot not in used)
        if not rule.rule_key:
            rule.rule_key = _free_rule_key(self.instance, rule.trigger)
        if commit:
            rule.save()
        return rule

    def save_existing(self, form, obj, commit=True):
        rule = form.save(commit=False)
        # A changed prompt is a new rule version, so earlier LLM decisions are not reused.
        if "criteria" in form.changed_data:
            rule.version += 1
        if "program" in form.changed_data:
            rule.program_id = None
        if commit:
            rule.save()
        return rule


def _free_rule_key(agent: Agent, trigger: str) -> str:
    base = trigger.replace("_", "-")
    taken = set(EnrollmentRule.objects.filter(agent=agent).values_list("rule_key", flat=True))
    number = 1
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


class EnrollmentRuleInline(admin.StackedInline):
    model = EnrollmentRule
    form = EnrollmentRuleForm
    formset = EnrollmentRuleFormSet
    extra = 0
    max_num = MAX_RULES_PER_AGENT

    def get_formset(self, request, obj=None, **kwargs):
        # validate_max makes a 6th rule an error on the form, not a silently ignored row.
        kwargs["validate_max"] = True
        return super().get_formset(request, obj, **kwargs)


class AgentConfigCheck:
    """Checks an agent's change form and inlines as one configuration document before saving."""

    def __init__(self, agent: Agent):
        self.agent = agent
        self.formsets = {}

    def add(self, formset):
        self.formsets[formset.model] = formset

    def run(self):
        """Raise ValidationError with every problem; add each to its inline row where one is named."""
        if not self.agent.organization_id or not self.agent.external_id:
            return  # the main form is invalid and shows its own errors
        others = [formset for model, formset in self.formsets.items() if model is not AgentWriteback]
        if not all(formset.is_valid() for formset in others):
            return

        organization = self.agent.organization
        existing = {agent.external_id: agent for agent in organization.agents.all()}
        stored = existing.get(self.agent.external_id)
        config = validate_agent_config(self._document(), stored)
        problems = list(config.problems)
        if not problems:
            from integrations.marketo.config_checks import MarketoConfigChecks

            problems = MarketoConfigChecks.for_organization(organization).check_and_prepare([config], existing)
        if problems:
            raise ValidationError([self._sentence(problem) for problem in problems])

    @staticmethod
    def _sentence(problem) -> str:
        # The guide's sentences (the 20-field cap, the 5-rule limit) are shown exactly as written.
        if problem.field in ("activity_fields", "enrollment_rules", "marketo", ""):
            return problem.reason
        return f"{problem.field}: {problem.reason}"

    def _rows(self, model) -> list[dict]:
        formset = self.formsets.get(model)
        if formset is None:
            return []
        return [
            form.cleaned_data for form in formset.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def _document(self) -> dict:
        document = {"id": self.agent.external_id, "name": self.agent.name}
        writeback = self._rows(AgentWriteback)
        if writeback:
            values = writeback[0]
            document.update({key: values.get(key, False) for key in ("marketo_enabled", "lead_sync", "activity_sync", "program_enrollment")})
            document["activity_fields"] = list(values.get("activity_fields") or [])
        document["post_call_analysis_fields"] = [
            {"key": row["key"], "label": row["label"], "data_type": row["data_type"]}
            for row in self._rows(PostCallAnalysisField)
        ]
        updates = sorted(self._rows(FieldMapping), key=lambda row: row.get("position") or 0)
        document["field_updates"] = [
            {"source": row["source"], "marketo_field": row["marketo_field"], "mode": row["mode"]} for row in updates
        ]
        document["enrollment_rules"] = [
            {"id": row.get("rule_key") or None, "trigger": row["trigger"], "criteria": row.get("criteria") or "",
             "program": row["program"], "status": row["status_name"]}
            for row in self._rows(EnrollmentRule)
        ]
        return document


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "external_id", "organization", "marketo_on", "created_from_event", "created_at")
    list_filter = ("organization", "created_from_event")
    search_fields = ("name", "external_id", "organization__slug")
    inlines = [AgentWritebackInline, PostCallAnalysisFieldInline, FieldMappingInline, EnrollmentRuleInline]

    @admin.display(description="Marketo", boolean=True)
    def marketo_on(self, agent):
        writeback = getattr(agent, "writeback", None)
        return bool(writeback and writeback.marketo_enabled)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization", "writeback")

    def get_formset_kwargs(self, request, obj, inline, prefix):
        # The all-or-nothing check needs every inline formset of this form
        # before all_valid() runs. Each formset gets the same check for this
        # agent and registers with it as it is built.
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        check = getattr(request, "_agent_config_check", None)
        if check is None or check.agent is not obj:
            check = AgentConfigCheck(obj)
            request._agent_config_check = check
        kwargs["config_check"] = check
        return kwargs

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        agent = form.instance
        exported = export_config(agent.organization, agent.external_id)["agents"]
        record_change(
            agent.organization, request.user.get_username(), "admin.change_agent" if change else "admin.add_agent",
            "Agent", agent.external_id, exported[0] if exported else {},
        )


# --- Events and what they carried -----------------------------------------------

def transcript_html(conversation: Conversation):
    """Render the transcript as escaped `Visitor: ...` / `Agent: ...` lines."""
    if not conversation.transcript:
        return "—"
    lines = (
        ("Visitor" if message.get("role") == "visitor" else "Agent", message.get("text", ""))
        for message in conversation.transcript
    )
    return format_html(
        '<div style="white-space: pre-wrap">{}</div>',
        format_html_join("\n", "<strong>{}:</strong> {}", lines),
    )


def attribution_html(conversation: Conversation):
    """Render each attribution value with where it came from (event attribution, landing page or page URL)."""
    if not conversation.attribution:
        return "—"
    rows = (
        (key, value, conversation.attribution_sources.get(key, "unknown"))
        for key, value in sorted(conversation.attribution.items())
    )
    return format_html(
        "<table><thead><tr><th>Key</th><th>Value</th><th>Taken from</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("external_id", "organization", "agent", "visitor", "started_at", "meeting_status")
    list_filter = ("organization", "agent", "meeting_status")
    search_fields = ("external_id", "visitor__email", "raw_email")
    date_hierarchy = "started_at"
    list_select_related = ("organization", "agent", "visitor")
    exclude = ("transcript", "attribution", "attribution_sources")
    readonly_fields = ("transcript_lines", "attribution_with_sources")

    @admin.display(description="Transcript")
    def transcript_lines(self, conversation):
        return transcript_html(conversation)

    @admin.display(description="Attribution")
    def attribution_with_sources(self, conversation):
        return attribution_html(conversation)


@admin.register(Meeting)
class MeetingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("external_id", "organization", "agent", "status", "start_at", "owner_name")
    list_filter = ("organization", "agent", "status")
    search_fields = ("external_id", "booking_id", "conversation_external_id", "owner_email")
    list_select_related = ("organization", "agent")


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event_id", "organization", "type", "agent", "occurred_at", "received_at")
    list_filter = ("organization", "type")
    search_fields = ("event_id",)
    date_hierarchy = "received_at"
    list_select_related = ("organization", "agent")


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("email", "organization", "marketo_lead_id", "conversation_count", "latest_interaction_at")
    list_filter = ("organization",)
    search_fields = ("email",)

