"""Forms of the customer settings pages, and the mapping of configuration problems onto them.

The pages only collect input: saving goes through
`agents.writeback_config.apply_config`, the same validation as the JSON
command and the admin, and `attach_problems` puts each problem it reports
beside the field it names.
"""

import re

from django import forms
from django.forms import formset_factory

from agents.models import FieldMapping, PostCallAnalysisField
from agents.writeback_config import TOO_MANY_RULES_MESSAGE
from enrollment.models import DEFAULT_PROGRAM_NAME, MAX_RULES_PER_AGENT, EnrollmentRule

# Help text for the switches, in the setup guide's words.
LEAD_SYNC_HELP = "Create new leads or update existing ones based on Docket conversations."
ACTIVITY_SYNC_HELP = "Create custom activities for Docket conversations or meetings booked via Docket."
PROGRAM_ENROLLMENT_HELP = "Configure rules for a lead to be enrolled in a Marketo program based on trigger criteria."

# A problem's field path from validate_agent_config or the Marketo checks:
# `activity_fields`, `field_updates[2].marketo_field`, `enrollment_rules`.
PROBLEM_PATH = re.compile(r"^(?P<section>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<field>[a-z_]+))?$")


class ConnectForm(forms.Form):
    """Marketo credentials from the LaunchPoint service; the secret is never rendered back."""

    munchkin_id = forms.CharField(
        label="Munchkin Account ID",
        max_length=11,
        help_text="e.g. 123-ABC-456. Find it in Marketo under Admin → Munchkin.",
        error_messages={"required": "Enter the Munchkin Account ID, e.g. 123-ABC-456."},
    )
    client_id = forms.CharField(
        label="Client ID",
        max_length=200,
        help_text="Client ID from the LaunchPoint service",
        error_messages={"required": "Enter the Client ID from the LaunchPoint service."},
    )
    client_secret = forms.CharField(
        label="Client Secret",
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Client Secret from the LaunchPoint service",
        error_messages={"required": "Enter the Client Secret from the LaunchPoint service."},
    )


class AgentSwitchesForm(forms.Form):
    """The Marketo switches of one agent and the optional activity fields it writes."""

    marketo_enabled = forms.BooleanField(label="Marketo", required=False)
    lead_sync = forms.BooleanField(label="Lead Sync", required=False, help_text=LEAD_SYNC_HELP)
    activity_sync = forms.BooleanField(label="Activity Sync", required=False, help_text=ACTIVITY_SYNC_HELP)
    program_enrollment = forms.BooleanField(
        label="Program enrolment", required=False, help_text=PROGRAM_ENROLLMENT_HELP
    )
    activity_fields = forms.MultipleChoiceField(
        label="Optional fields", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, activity_field_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["activity_fields"].choices = activity_field_choices


class AnalysisFieldForm(forms.Form):
    key = forms.CharField(
        label="Key", max_length=64, help_text="Letters, digits and underscores, e.g. budget_range."
    )
    label = forms.CharField(label="Label", max_length=100, required=False)
    data_type = forms.ChoiceField(
        label="Data type",
        choices=PostCallAnalysisField.DataType.choices,
        initial=PostCallAnalysisField.DataType.STRING,
    )


AnalysisFieldFormSet = formset_factory(AnalysisFieldForm, extra=0, can_delete=True)


class FieldUpdateForm(forms.Form):
    source = forms.ChoiceField(label="Docket value")
    marketo_field = forms.ChoiceField(label="Marketo field")
    mode = forms.ChoiceField(label="Mode", choices=FieldMapping.Mode.choices, initial=FieldMapping.Mode.OVERWRITE)

    def __init__(self, *args, source_choices, lead_field_choices, **kwargs):
        super().__init__(*args, **kwargs)
        # A blank first option keeps an untouched new row unchanged, so it is ignored.
        self.fields["source"].choices = [("", "Choose a value")] + list(source_choices)
        self.fields["marketo_field"].choices = [("", "Choose a lead field")] + list(lead_field_choices)


FieldUpdateFormSet = formset_factory(FieldUpdateForm, extra=0, can_delete=True)


class StatusSelect(forms.Select):
    """A status dropdown whose options name the programs that offer them, for filtering in the page."""

    def __init__(self, *args, programs_by_status=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.programs_by_status = programs_by_status or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        programs = self.programs_by_status.get(value)
        if programs:
            # Program names may contain commas, so they are joined with a newline.
            option["attrs"]["data-programs"] = "\n".join(programs)
        return option


class EnrollmentRuleForm(forms.Form):
    rule_id = forms.CharField(required=False, widget=forms.HiddenInput)
    trigger = forms.ChoiceField(label="Trigger")
    criteria = forms.CharField(
        label="Custom criteria",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            "Write a prompt describing when to enroll (e.g. \"enroll if the visitor is from an "
            "enterprise company and discussed pricing\"). An LLM evaluates the criteria using "
            "the full conversation context."
        ),
    )
    program = forms.ChoiceField(label="Program", initial=DEFAULT_PROGRAM_NAME)
    status = forms.ChoiceField(label="Status", required=False)

    def __init__(self, *args, program_choices, status_choices, programs_by_status, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["trigger"].choices = [("", "Choose a trigger")] + list(EnrollmentRule.Trigger.choices)
        self.fields["program"].choices = list(program_choices)
        self.fields["status"].choices = [("", "Default for the trigger")] + list(status_choices)
        self.fields["status"].widget = StatusSelect(programs_by_status=programs_by_status)
        self.fields["status"].widget.choices = self.fields["status"].choices

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("trigger") == EnrollmentRule.Trigger.CUSTOM_CRITERIA and not (cleaned.get("criteria") or "").strip():
            self.add_error("criteria", "Custom criteria rules need a prompt describing when to enroll.")
        return cleaned


class BaseEnrollmentRuleFormSet(forms.BaseFormSet):
    """Rules of one agent; more than 5 rows holding a rule are rejected with the guide's sentence.

    Django's validate_max would also count untouched new rows, so the rows
    that hold a rule are counted here instead.
    """

    def clean(self):
        super().clean()
        if len(kept_forms(self)) > MAX_RULES_PER_AGENT:
            raise forms.ValidationError(TOO_MANY_RULES_MESSAGE, code="too_many_forms")


EnrollmentRuleFormSet = formset_factory(
    EnrollmentRuleForm,
    formset=BaseEnrollmentRuleFormSet,
    extra=0,
    can_delete=True,
    # Rows past the limit are still read, so that a 6th rule is rejected
    # with the message rather than silently dropped.
    max_num=MAX_RULES_PER_AGENT + 20,
    absolute_max=MAX_RULES_PER_AGENT + 20,
)


def kept_forms(formset) -> list[forms.Form]:
    """Return the formset's forms that hold a row to save: existing or filled in, and not deleted."""
    kept = []
    for form in formset.forms:
        if formset.can_delete and getattr(form, "cleaned_data", {}).get("DELETE"):
            continue
        if not form.has_changed() and not form.initial:
            continue
        kept.append(form)
    return kept


def attach_problems(problems, item_sections: dict[str, tuple[list, dict[str, str]]], whole_sections: dict) -> list[str]:
    """Add each configuration problem to the form field it names.

    `item_sections` maps a document list (`field_updates`) to the forms its
    items came from, in the same order, and a map from document field names
    to form field names. `whole_sections` maps a document key
    (`activity_fields`) to a callable that shows a problem about the whole
    key. Returns the problems that name no form field, for the top of the page.
    """
    unplaced = []
    for problem in problems:
        match = PROBLEM_PATH.match(problem.field or "")
        if match is None:
            unplaced.append(problem.reason)
            continue

        section = match["section"]
        if section in whole_sections:
            whole_sections[section](problem.reason)
            continue

        forms_in_order, field_names = item_sections.get(section, ([], {}))
        index = int(match["index"]) if match["index"] is not None else None
        if index is None or index >= len(forms_in_order) or (match["field"] or "") not in field_names:
            unplaced.append(problem.reason)
            continue
        forms_in_order[index].add_error(field_names[match["field"] or ""], problem.reason)
    return unplaced
