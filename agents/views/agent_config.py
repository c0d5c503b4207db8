"""Marketing Agent Configuration → [agent] → Analysis and Actions → Marketo.

The page collects one agent's switches, activity fields, post-call analysis
fields, field updates and enrollment rules. It saves them with `apply_config`
for that agent alone, all or nothing, through the same checks as the JSON
command, so a configuration Marketo would reject is never saved.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from agents.forms import (
    AgentSwitchesForm,
    AnalysisFieldFormSet,
    EnrollmentRuleFormSet,
    FieldUpdateFormSet,
    attach_problems,
    kept_forms,
)
from agents.models import Agent, AgentWriteback
from agents.permissions import org_admin_required
from agents.sources import OPTIONAL_ACTIVITY_FIELD_KEYS, static_source_keys
from agents.views.marketo_options import read_options
from agents.writeback_config import ConfigError, apply_config
from enrollment.models import MAX_RULES_PER_AGENT, TOO_MANY_RULES_MESSAGE, EnrollmentRule
from integrations.marketo.assets import CONVERSATION_ACTIVITY, analysis_attribute_api_name

# The 13 mandatory Docket Conversation attributes, in the setup guide's order.
MANDATORY_ATTRIBUTE_ORDER = (
    "visitorEmail", "agentName", "conversationDuration", "pageUrl", "conversationSummary",
    "docketMeetingStatus", "docketInteractionCount", "fullTranscript", "conversationId",
    "conversationStartTime", "conversationEndTime", "agentId", "updatedByDocket",
)

SWITCH_KEYS = ("marketo_enabled", "lead_sync", "activity_sync", "program_enrollment")


@org_admin_required
def agent_list(request, organization):
    agents = organization.agents.select_related("writeback").order_by("name", "external_id")
    rows = [(agent, getattr(agent, "writeback", None) or AgentWriteback(agent=agent)) for agent in agents]
    return render(request, "settings/agent_list.html", {"organization": organization, "rows": rows})


@require_http_methods(["GET", "POST"])
@org_admin_required
def agent_marketo(request, pk, organization):
    agent = get_object_or_404(Agent, organization=organization, pk=pk)
    options = read_options(organization)
    saved = _saved_state(agent)
    page = _ConfigPage(agent, options, saved, request.POST if request.method == "POST" else None)

    if request.method == "POST" and page.is_valid():
        try:
            apply_config(organization, {"agents": [page.document()]}, actor=request.user.get_username())
        except ConfigError as error:
            page.show_problems(error.problems)
        else:
            messages.success(request, f"Saved the Marketo configuration of {agent}.")
            return redirect("agent-marketo", pk=agent.pk)

    return render(request, "settings/agent_marketo.html", page.context(organization))


@require_POST
@org_admin_required
def refresh_marketo_lists(request, pk, organization):
    agent = get_object_or_404(Agent, organization=organization, pk=pk)
    options = read_options(organization, refresh=True)
    if options.problems:
        for problem in options.problems:
            messages.error(request, problem)
    else:
        messages.success(request, "Reloaded the lead fields, programs and statuses from Marketo.")
    return redirect("agent-marketo", pk=agent.pk)


def _saved_state(agent: Agent) -> dict:
    writeback = getattr(agent, "writeback", None) or AgentWriteback(agent=agent)
    return {
        "switches": {key: getattr(writeback, key) for key in SWITCH_KEYS}
        | {"activity_fields": list(writeback.activity_fields)},
        "analysis": [
            {"key": item.key, "label": item.label, "data_type": item.data_type}
            for item in agent.analysis_fields.all()
        ],
        "updates": [
            {"source": item.source, "marketo_field": item.marketo_field, "mode": item.mode}
            for item in agent.field_mappings.all()
        ],
        "rules": [
            {"rule_id": rule.rule_key, "trigger": rule.trigger, "criteria": rule.criteria,
             "program": rule.program, "status": rule.status_name}
            for rule in agent.enrollment_rules.all()
        ],
    }


class _ConfigPage:
    """The bound (or initial) forms of the page and how they turn into one agent's JSON document."""

    def __init__(self, agent, options, saved, data):
        self.agent = agent
        self.options = options
        self.top_errors: list[str] = []
        self.slot_errors: list[str] = []
        self.rule_errors: list[str] = []

        self.analysis = AnalysisFieldFormSet(data, prefix="analysis", initial=saved["analysis"])
        analysis_keys = self._analysis_keys(saved, data is not None)

        self.switches = AgentSwitchesForm(
            data,
            initial=saved["switches"],
            activity_field_choices=self._activity_field_choices(analysis_keys, saved),
        )
        self.updates = FieldUpdateFormSet(
            data,
            prefix="updates",
            initial=saved["updates"],
            form_kwargs={
                "source_choices": _source_choices(analysis_keys),
                "lead_field_choices": options.lead_field_choices([item["marketo_field"] for item in saved["updates"]]),
            },
        )
        saved_programs = [item["program"] for item in saved["rules"]]
        saved_statuses = [item["status"] for item in saved["rules"]]
        self.rules = EnrollmentRuleFormSet(
            data,
            prefix="rules",
            initial=saved["rules"],
            form_kwargs={
                "program_choices": options.program_choices(saved_programs),
                "status_choices": options.status_choices(saved_statuses),
                "programs_by_status": options.programs_by_status(),
            },
        )

    def _analysis_keys(self, saved, bound) -> list[str]:
        """Post-call analysis keys the other sections may use: the saved ones, or the submitted ones."""
        if bound and self.analysis.is_valid():
            return [form.cleaned_data["key"] for form in kept_forms(self.analysis) if form.cleaned_data.get("key")]
        return [item["key"] for item in saved["analysis"]]

    def _activity_field_choices(self, analysis_keys, saved) -> list[tuple[str, str]]:
        choices = [(key, CONVERSATION_ACTIVITY.optional[key].name) for key in OPTIONAL_ACTIVITY_FIELD_KEYS]
        labels = {item["key"]: item["label"] for item in saved["analysis"]}
        keys = list(analysis_keys)
        # A selected field whose analysis field was just removed stays listed,
        # so the problem is reported beside it instead of as an invalid choice.
        keys.extend(key[4:] for key in saved["switches"]["activity_fields"] if key.startswith("pca:") and key[4:] not in keys)
        choices.extend((f"pca:{key}", f"Post-call analysis: {labels.get(key) or key}") for key in keys)
        return choices

    def is_valid(self) -> bool:
        valid = all(
            [self.switches.is_valid(), self.analysis.is_valid(), self.updates.is_valid(), self.rules.is_valid()]
        )
        if not valid:
            self.top_errors.append("The configuration was not saved. Correct the fields marked below.")
            self.top_errors.extend(self.rules.non_form_errors())
        return valid

    def document(self) -> dict:
        """Return this agent's entry in the writeback configuration JSON."""
        switches = self.switches.cleaned_data
        return {
            "id": self.agent.external_id,
            **{key: switches[key] for key in SWITCH_KEYS},
            "post_call_analysis_fields": [
                {"key": form.cleaned_data["key"], "label": form.cleaned_data["label"],
                 "data_type": form.cleaned_data["data_type"]}
                for form in self._analysis_forms
            ],
            "activity_fields": list(switches["activity_fields"]),
            "field_updates": [
                {"source": form.cleaned_data["source"], "marketo_field": form.cleaned_data["marketo_field"],
                 "mode": form.cleaned_data["mode"]}
                for form in self._update_forms
            ],
            "enrollment_rules": [
                {"id": form.cleaned_data["rule_id"] or None, "trigger": form.cleaned_data["trigger"],
                 "criteria": form.cleaned_data["criteria"], "program": form.cleaned_data["program"],
                 "status": form.cleaned_data["status"] or None}
                for form in self._rule_forms
            ],
        }

    @property
    def _analysis_forms(self):
        return kept_forms(self.analysis)

    @property
    def _update_forms(self):
        return kept_forms(self.updates)

    @property
    def _rule_forms(self):
        return kept_forms(self.rules)

    def show_problems(self, problems):
        """Put each problem beside its field; list every one at the top too."""

        def activity_problem(reason):
            self.switches.add_error("activity_fields", reason)
            self.slot_errors.append(reason)

        def rules_problem(reason):
            self.rule_errors.append(reason)

        item_sections = {
            "post_call_analysis_fields": (
                self._analysis_forms, {"key": "key", "label": "label", "data_type": "data_type"}
            ),
            "field_updates": (
                self._update_forms, {"source": "source", "marketo_field": "marketo_field", "mode": "mode"}
            ),
            "enrollment_rules": (
                self._rule_forms,
                {"trigger": "trigger", "criteria": "criteria", "program": "program", "status": "status"},
            ),
        }
        attach_problems(
            problems,
            item_sections,
            {"activity_fields": activity_problem, "enrollment_rules": rules_problem},
        )
        self.top_errors.append("The configuration was not saved:")
        self.top_errors.extend(dict.fromkeys(problem.reason for problem in problems))

    def context(self, organization) -> dict:
        slots = self.options.slots
        in_marketo = slots.api_names if slots else set()
        mandatory = {spec.api_name: spec.name for spec in (CONVERSATION_ACTIVITY.primary, *CONVERSATION_ACTIVITY.attributes)}
        return {
            "organization": organization,
            "agent": self.agent,
            "options": self.options,
            "switches": self.switches,
            "analysis": self.analysis,
            "updates": self.updates,
            "rules": self.rules,
            "top_errors": self.top_errors,
            "slot_errors": self.slot_errors,
            "rule_errors": self.rule_errors,
            "mandatory_fields": [mandatory[api_name] for api_name in MANDATORY_ATTRIBUTE_ORDER],
            "slots": slots,
            "optional_in_marketo": [key for key, _ in self.switches.fields["activity_fields"].choices
                                    if _attribute_api_name(key) in in_marketo],
            "api_names": {key: _attribute_api_name(key) for key, _ in self.switches.fields["activity_fields"].choices},
            "trigger_defaults": {str(trigger): status for trigger, status in EnrollmentRule.DEFAULT_STATUS.items()},
            "max_rules": MAX_RULES_PER_AGENT,
            "too_many_rules_message": TOO_MANY_RULES_MESSAGE,
        }


def _attribute_api_name(key: str) -> str:
    if key.startswith("pca:"):
        return analysis_attribute_api_name(key[4:])
    return CONVERSATION_ACTIVITY.optional[key].api_name


def _source_choices(analysis_keys) -> list[tuple[str, str]]:
    choices = [(key, f"{_source_label(key)} ({key})") for key in static_source_keys()]
    choices.extend((f"pca:{key}", f"Post-call analysis: {key} (pca:{key})") for key in analysis_keys)
    return choices


def _source_label(key: str) -> str:
    optional = CONVERSATION_ACTIVITY.optional
    if key.startswith("visitor."):
        return "Visitor " + key.split(".", 1)[1].replace("_", " ")
    if key.startswith("first_touch."):
        return "First touch: " + optional[key.split(".", 1)[1]].name
    if key in optional:
        return optional[key].name
    if key == "summary":
        return "Conversation Summary"
    return key
