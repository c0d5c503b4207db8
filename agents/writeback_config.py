"""Writeback configuration as JSON: validation, apply and export.

Applying is all-or-nothing: every agent in the document is validated first,
Marketo is changed next (new activity attributes added and the type
approved), and only then is the configuration saved, in one transaction.
One problem anywhere rejects the whole document with every problem listed.
The settings pages and the admin go through the same `validate_agent_config`.
"""

import logging
from dataclasses import dataclass, field

from django.db import transaction

from agents.models import Agent, AgentWriteback, FieldMapping, Organization, PostCallAnalysisField
from agents.sources import OPTIONAL_ACTIVITY_FIELD_KEYS, SOURCE_DATA_TYPES
from enrollment.models import DEFAULT_PROGRAM_NAME, MAX_RULES_PER_AGENT, EnrollmentRule

logger = logging.getLogger(__name__)

TOO_MANY_FIELDS_MESSAGE = "Could not save the configuration as the Activity has more than 20 fields configured."
TOO_MANY_RULES_MESSAGE = "Each agent can have up to 5 program enrollment rules."
BOOLEAN_KEYS = ("marketo_enabled", "lead_sync", "activity_sync", "program_enrollment")
ANALYSIS_DATA_TYPES = [choice for choice, _ in PostCallAnalysisField.DataType.choices]
TRIGGERS = [choice for choice, _ in EnrollmentRule.Trigger.choices]
MODES = [choice for choice, _ in FieldMapping.Mode.choices]


@dataclass
class ConfigProblem:
    agent_id: str
    field: str
    reason: str

    def __str__(self):
        return f"agent {self.agent_id or '?'}: {self.field}: {self.reason}"


class ConfigError(Exception):
    """The configuration was rejected; nothing changed."""

    def __init__(self, problems: list[ConfigProblem]):
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass
class AgentConfig:
    """One agent's configuration after validation, ready to save."""

    agent_id: str
    values: dict
    analysis_fields: list[dict] | None = None
    activity_fields: list[str] | None = None
    field_updates: list[dict] | None = None
    rules: list[dict] | None = None
    problems: list[ConfigProblem] = field(default_factory=list)

    def problem(self, field_path: str, reason: str):
        self.problems.append(ConfigProblem(self.agent_id, field_path, reason))


def validate_agent_config(raw: dict, existing: Agent | None) -> AgentConfig:
    """Check one agent's JSON object; problems are collected, not raised."""
    agent_id = raw.get("id") if isinstance(raw, dict) else None
    config = AgentConfig(agent_id=agent_id if isinstance(agent_id, str) else "", values={})
    if not isinstance(raw, dict):
        config.problem("agent", "must be a JSON object.")
        return config
    if not isinstance(agent_id, str) or not agent_id.strip():
        config.problem("id", "is required as a non-empty string.")

    if "name" in raw:
        if not isinstance(raw["name"], str):
            config.problem("name", "must be a string.")
        else:
            config.values["name"] = raw["name"].strip()[:200]
    for key in BOOLEAN_KEYS:
        if key in raw:
            if not isinstance(raw[key], bool):
                config.problem(key, f"must be true or false, got {raw[key]!r}.")
            else:
                config.values[key] = raw[key]

    analysis_keys = _validate_analysis_fields(raw, existing, config)
    _validate_activity_fields(raw, analysis_keys, config)
    _validate_field_updates(raw, analysis_keys, config)
    _validate_rules(raw, config)
    return config


def _validate_analysis_fields(raw, existing, config) -> set[str]:
    if "post_call_analysis_fields" not in raw:
        return set(existing.analysis_fields.values_list("key", flat=True)) if existing else set()

    items = raw["post_call_analysis_fields"]
    if not isinstance(items, list):
        config.problem("post_call_analysis_fields", "must be a list.")
        return set()
    config.analysis_fields = []
    keys = set()
    for index, item in enumerate(items):
        path = f"post_call_analysis_fields[{index}]"
        if not isinstance(item, dict):
            config.problem(path, "must be an object with key, label and data_type.")
            continue
        key = item.get("key")
        if not isinstance(key, str) or not key or not key.replace("_", "").isalnum() or not key.isascii():
            config.problem(f"{path}.key", f"{key!r} is invalid; use letters, digits and underscores, e.g. budget_range.")
            continue
        if key in keys:
            config.problem(f"{path}.key", f"{key!r} is listed twice.")
            continue
        data_type = item.get("data_type", "string")
        if data_type not in ANALYSIS_DATA_TYPES:
            config.problem(f"{path}.data_type", f"{data_type!r} is not one of {', '.join(ANALYSIS_DATA_TYPES)}.")
            continue
        label = item.get("label") or key.replace("_", " ").title()
        if not isinstance(label, str):
            config.problem(f"{path}.label", "must be a string.")
            continue
        keys.add(key)
        config.analysis_fields.append({"key": key, "label": label.strip()[:100], "data_type": data_type})
    return keys


def _validate_activity_fields(raw, analysis_keys, config):
    if "activity_fields" not in raw:
        return
    items = raw["activity_fields"]
    if not isinstance(items, list):
        config.problem("activity_fields", "must be a list of field keys.")
        return
    selected = []
    for index, key in enumerate(items):
        if not isinstance(key, str):
            config.problem(f"activity_fields[{index}]", "must be a string.")
        elif key.startswith("pca:"):
            if key[4:] not in analysis_keys:
                config.problem(f"activity_fields[{index}]", f"{key!r} names no post-call analysis field of this agent.")
            else:
                selected.append(key)
        elif key not in OPTIONAL_ACTIVITY_FIELD_KEYS:
            config.problem(
                f"activity_fields[{index}]",
                f"{key!r} is not an optional activity field; use one of {', '.join(OPTIONAL_ACTIVITY_FIELD_KEYS)} or pca:<key>.",
            )
        elif key not in selected:
            selected.append(key)
    config.activity_fields = selected


def _validate_field_updates(raw, analysis_keys, config):
    if "field_updates" not in raw:
        return
    items = raw["field_updates"]
    if not isinstance(items, list):
        config.problem("field_updates", "must be a list.")
        return
    config.field_updates = []
    targets = set()
    for index, item in enumerate(items):
        path = f"field_updates[{index}]"
        if not isinstance(item, dict):
            config.problem(path, "must be an object with source, marketo_field and mode.")
            continue
        source = item.get("source")
        if not isinstance(source, str) or not (
            source in SOURCE_DATA_TYPES or (source.startswith("pca:") and source[4:] in analysis_keys)
        ):
            config.problem(f"{path}.source", f"{source!r} is not a known source; see the list of source keys.")
            continue
        target = item.get("marketo_field")
        if not isinstance(target, str) or not target.strip():
            config.problem(f"{path}.marketo_field", "is required: the lead field's REST API name, e.g. leadSource.")
            continue
        if target in targets:
            config.problem(f"{path}.marketo_field", f"{target!r} is written by two field updates; keep one.")
            continue
        mode = item.get("mode", FieldMapping.Mode.OVERWRITE)
        if mode not in MODES:
            config.problem(f"{path}.mode", f"{mode!r} is not one of {', '.join(MODES)}.")
            continue
        targets.add(target)
        config.field_updates.append({"source": source, "marketo_field": target.strip(), "mode": mode})


def _validate_rules(raw, config):
    if "enrollment_rules" not in raw:
        return
    items = raw["enrollment_rules"]
    if not isinstance(items, list):
        config.problem("enrollment_rules", "must be a list.")
        return
    if len(items) > MAX_RULES_PER_AGENT:
        config.problem("enrollment_rules", f"{TOO_MANY_RULES_MESSAGE} This agent lists {len(items)}.")
        return
    config.rules = []
    ids = set()
    signatures: dict[tuple, int] = {}
    for index, item in enumerate(items):
        path = f"enrollment_rules[{index}]"
        if not isinstance(item, dict):
            config.problem(path, "must be an object.")
            continue
        trigger = item.get("trigger")
        if trigger not in TRIGGERS:
            config.problem(f"{path}.trigger", f"{trigger!r} is not one of {', '.join(TRIGGERS)}.")
            continue
        criteria = item.get("criteria", "")
        if trigger == EnrollmentRule.Trigger.CUSTOM_CRITERIA and (not isinstance(criteria, str) or not criteria.strip()):
            config.problem(f"{path}.criteria", "is required for custom_criteria: describe when to enroll.")
            continue
        rule_id = item.get("id")
        if rule_id is not None and (not isinstance(rule_id, str) or not rule_id.strip()):
            config.problem(f"{path}.id", "must be a non-empty string.")
            continue
        # Rules without an id are matched by their content, so only given ids must be unique.
        if rule_id is not None and rule_id in ids:
            config.problem(f"{path}.id", f"{rule_id!r} is used by two rules of this agent.")
            continue
        if rule_id is not None:
            ids.add(rule_id)
        program = item.get("program", DEFAULT_PROGRAM_NAME)
        if isinstance(program, int) and not isinstance(program, bool):
            program = str(program)
        if not isinstance(program, str) or not program.strip():
            config.problem(f"{path}.program", "must be a program name or numeric id.")
            continue
        status = item.get("status") or EnrollmentRule.DEFAULT_STATUS[trigger]
        if not isinstance(status, str):
            config.problem(f"{path}.status", "must be a status name.")
            continue
        signature = (trigger, program.strip(), status.strip(), (criteria or "").strip())
        if signature in signatures:
            config.problem(
                path, f"repeats rule {signatures[signature] + 1}: same trigger, program, status and criteria; remove one."
            )
            continue
        signatures[signature] = index
        config.rules.append(
            {
                "id": rule_id,
                "trigger": trigger,
                "criteria": (criteria or "").strip() if trigger == EnrollmentRule.Trigger.CUSTOM_CRITERIA else "",
                "program": program.strip(),
                "status": status.strip(),
            }
        )


def activity_attribute_count(agent_configs: dict[str, list[str]]) -> int:
    """Attributes the Docket Conversation type needs for these agents: 13 mandatory plus the union of optional ones."""
    from integrations.marketo.assets import CONVERSATION_ACTIVITY

    optional = set()
    for keys in agent_configs.values():
        optional.update(keys)
    return CONVERSATION_ACTIVITY.mandatory_count + len(optional)


def apply_config(organization: Organization, document, *, actor: str = "system", marketo=None) -> list[Agent]:
    """Validate and apply a configuration document; raise ConfigError with every problem, changing nothing.

    `marketo` is an object with `check_and_prepare(configs, existing)`. It
    validates the document against the live Marketo instance (lead fields,
    programs, statuses, the 20-attribute cap) and adds activity attributes.
    The default is `integrations.marketo.config_checks.MarketoConfigChecks`.
    """
    if not isinstance(document, dict) or not isinstance(document.get("agents"), list):
        raise ConfigError([ConfigProblem("", "agents", 'The file must be a JSON object like {"agents": [...]}.')])

    existing = {agent.external_id: agent for agent in organization.agents.all()}
    configs, problems, seen = [], [], set()
    for raw in document["agents"]:
        config = validate_agent_config(raw, existing.get(raw.get("id") if isinstance(raw, dict) else None))
        if config.agent_id in seen:
            config.problem("id", f"agent {config.agent_id!r} is listed twice.")
        seen.add(config.agent_id)
        configs.append(config)
        problems.extend(config.problems)
    if problems:
        raise ConfigError(problems)

    if marketo is None:
        from integrations.marketo.config_checks import MarketoConfigChecks

        marketo = MarketoConfigChecks.for_organization(organization)
    if marketo is not None:
        problems = marketo.check_and_prepare(configs, existing)
        if problems:
            raise ConfigError(problems)

    with transaction.atomic():
        saved = [_save(organization, config, existing.get(config.agent_id)) for config in configs]
    from integrations.audit import record_change

    for config in configs:
        record_change(organization, actor, "apply_writeback_config", "Agent", config.agent_id, _describe_changes(config))
    logger.info("config.applied org=%s agents=%s actor=%s", organization.slug, len(saved), actor)
    return saved


def _describe_changes(config: AgentConfig) -> dict:
    changes = dict(config.values)
    for key in ("analysis_fields", "activity_fields", "field_updates", "rules"):
        value = getattr(config, key)
        if value is not None:
            changes[key] = value
    return changes


def _save(organization: Organization, config: AgentConfig, agent: Agent | None) -> Agent:
    created = agent is None
    if created:
        agent = Agent.objects.create(
            organization=organization, external_id=config.agent_id, name=config.values.get("name", "")
        )
    elif "name" in config.values:
        agent.name = config.values["name"]
        agent.save(update_fields=["name"])

    writeback, _ = AgentWriteback.objects.get_or_create(agent=agent)
    for key in BOOLEAN_KEYS:
        if key in config.values:
            setattr(writeback, key, config.values[key])
    if config.activity_fields is not None:
        writeback.activity_fields = config.activity_fields
    writeback.save()

    if config.analysis_fields is not None:
        keep = {item["key"] for item in config.analysis_fields}
        agent.analysis_fields.exclude(key__in=keep).delete()
        for item in config.analysis_fields:
            PostCallAnalysisField.objects.update_or_create(
                agent=agent, key=item["key"], defaults={"label": item["label"], "data_type": item["data_type"]}
            )

    if config.field_updates is not None:
        agent.field_mappings.all().delete()
        for position, item in enumerate(config.field_updates):
            FieldMapping.objects.create(agent=agent, position=position, **item)

    if config.rules is not None:
        save_rules(agent, config.rules)
    elif created:
        save_rules(agent, default_rules())
    return agent


def default_rules() -> list[dict]:
    return [
        {"id": "default-conversation", "trigger": "conversation_completed", "criteria": "",
         "program": DEFAULT_PROGRAM_NAME, "status": "Engaged"},
        {"id": "default-meeting", "trigger": "meeting_booked", "criteria": "",
         "program": DEFAULT_PROGRAM_NAME, "status": "Meeting Booked"},
    ]


def save_rules(agent: Agent, rules: list[dict]):
    """Replace an agent's rules, keeping the identity (and decisions) of rules that match.

    A rule matches a stored one by `id`, or without an id by the same
    trigger, program, status and criteria. A changed criteria text makes a
    new version, so earlier LLM decisions are not reused.
    """
    stored = list(agent.enrollment_rules.all())
    kept = {}
    for rule in rules:
        match = None
        if rule["id"]:
            match = next((item for item in stored if item.rule_key == rule["id"]), None)
        else:
            match = next(
                (
                    item for item in stored
                    if item.trigger == rule["trigger"] and item.program == rule["program"]
                    and item.status_name == rule["status"] and item.criteria == rule["criteria"]
                    and item.pk not in kept
                ),
                None,
            )
        if match is not None:
            kept[match.pk] = rule

    EnrollmentRule.objects.filter(agent=agent).exclude(pk__in=kept).delete()
    used_slots = set(EnrollmentRule.objects.filter(agent=agent).values_list("slot", flat=True))
    free_slots = [slot for slot in range(1, MAX_RULES_PER_AGENT + 1) if slot not in used_slots]

    for rule in rules:
        match = next((item for item in stored if kept.get(item.pk) is rule), None)
        if match is not None:
            if match.criteria != rule["criteria"]:
                match.version += 1
            match.trigger = rule["trigger"]
            match.criteria = rule["criteria"]
            if match.program != rule["program"]:
                match.program_id = None
            match.program = rule["program"]
            match.status_name = rule["status"]
            if rule["id"]:
                match.rule_key = rule["id"]
            match.save()
            continue
        EnrollmentRule.objects.create(
            agent=agent,
            slot=free_slots.pop(0),
            rule_key=rule["id"] or _generated_key(agent, rule),
            trigger=rule["trigger"],
            criteria=rule["criteria"],
            program=rule["program"],
            status_name=rule["status"],
        )


def _generated_key(agent: Agent, rule: dict) -> str:
    base = rule["trigger"].replace("_", "-")
    existing = set(agent.enrollment_rules.values_list("rule_key", flat=True))
    number = 1
    while f"{base}-{number}" in existing:
        number += 1
    return f"{base}-{number}"


def export_config(organization: Organization, agent_id: str | None = None) -> dict:
    """Return the organization's writeback configuration in the same JSON shape apply reads."""
    agents = organization.agents.select_related("writeback").prefetch_related(
        "analysis_fields", "field_mappings", "enrollment_rules"
    )
    if agent_id:
        agents = agents.filter(external_id=agent_id)

    exported = []
    for agent in agents:
        writeback = getattr(agent, "writeback", None) or AgentWriteback(agent=agent)
        exported.append(
            {
                "id": agent.external_id,
                "name": agent.name,
                **{key: getattr(writeback, key) for key in BOOLEAN_KEYS},
                "post_call_analysis_fields": [
                    {"key": item.key, "label": item.label, "data_type": item.data_type}
                    for item in agent.analysis_fields.all()
                ],
                "activity_fields": list(writeback.activity_fields),
                "field_updates": [
                    {"source": item.source, "marketo_field": item.marketo_field, "mode": item.mode}
                    for item in agent.field_mappings.all()
                ],
                "enrollment_rules": [_export_rule(rule) for rule in agent.enrollment_rules.all()],
            }
        )
    return {"agents": exported}


def _export_rule(rule: EnrollmentRule) -> dict:
    exported = {"id": rule.rule_key, "trigger": rule.trigger, "program": rule.program, "status": rule.status_name}
    if rule.trigger == EnrollmentRule.Trigger.CUSTOM_CRITERIA:
        exported["criteria"] = rule.criteria
    return exported

