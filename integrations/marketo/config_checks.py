"""Checking a writeback configuration against the live Marketo instance, then preparing it.

Every agent of a connection shares the Docket Conversation activity type.
The 20-attribute cap therefore counts what the type has in Marketo now,
primary included, plus what the agents being saved add. Attributes that
other agents or an admin added take slots too. Marketo is changed first (new
attributes added, the type approved); the configuration is saved only when
Marketo accepted, and a half-applied change discards the draft.
"""

import logging

from agents.writeback_config import TOO_MANY_FIELDS_MESSAGE, ConfigProblem
from integrations.marketo.assets import (
    CONVERSATION_ACTIVITY,
    MAX_ACTIVITY_ATTRIBUTES,
    analysis_attribute,
)
from integrations.marketo.client import MarketoClient
from integrations.marketo.exceptions import MarketoError
from integrations.models import MarketoConnection
from integrations.writeback import metadata

logger = logging.getLogger(__name__)

# Source data types that a lead field of each Marketo type accepts.
COMPATIBLE_TYPES = {
    "string": {"string", "email", "phone", "url", "link", "text"},
    "email": {"email", "string"},
    "phone": {"phone", "string"},
    "text": {"text", "textarea", "string"},
    "datetime": {"datetime", "string", "text"},
    "integer": {"integer", "float", "string", "text", "currency", "score"},
    "float": {"float", "currency", "string", "text", "percent"},
    "boolean": {"boolean", "string", "text"},
    "date": {"date", "datetime", "string", "text"},
}


def optional_attributes(activity_fields: list[str], analysis_types: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """Return {apiName: Marketo attribute payload} for an agent's optional activity fields."""
    attributes = {}
    for key in activity_fields:
        if key.startswith("pca:"):
            label, data_type = analysis_types[key[4:]]
            spec = analysis_attribute(key[4:], label, data_type)
        else:
            spec = CONVERSATION_ACTIVITY.optional[key]
        attributes[spec.api_name] = spec.as_marketo()
    return attributes


class LocalConfigChecks:
    """Checks without a connected Marketo instance: only the attribute cap on what agents configure."""

    def check_and_prepare(self, configs, existing) -> list[ConfigProblem]:
        needed = _needed_attributes(configs, existing)
        count = CONVERSATION_ACTIVITY.mandatory_count + len(needed)
        if count > MAX_ACTIVITY_ATTRIBUTES:
            return [ConfigProblem(config.agent_id, "activity_fields", TOO_MANY_FIELDS_MESSAGE) for config in configs if config.activity_fields]
        return []


class MarketoConfigChecks:
    def __init__(self, connection: MarketoConnection, client):
        self.connection = connection
        self.client = client

    @classmethod
    def for_organization(cls, organization):
        connection = MarketoConnection.objects.filter(
            organization=organization, status=MarketoConnection.Status.CONNECTED
        ).first()
        if connection is None:
            return LocalConfigChecks()
        return cls(connection, MarketoClient.for_connection(connection))

    def check_and_prepare(self, configs, existing) -> list[ConfigProblem]:
        try:
            problems = self._check_lead_fields(configs) + self._check_rules(configs)
            type_now = self.client.describe_custom_activity_type(CONVERSATION_ACTIVITY.api_name, draft=True)
        except MarketoError as error:
            return [ConfigProblem("", "marketo", f"Marketo could not be reached to check the configuration: {error}")]
        if type_now is None:
            return [ConfigProblem("", "marketo", "The Docket Conversation activity type is missing in Marketo; run setup again.")]

        current = {attribute["apiName"]: attribute for attribute in type_now.get("attributes", [])}
        primary = type_now.get("primaryAttribute") or {}
        current_count = len(current) + (0 if primary.get("apiName") in current else 1)
        needed = _needed_attributes(configs, existing)

        for api_name, attribute in needed.items():
            present = current.get(api_name)
            if present and present.get("dataType") and present["dataType"] != attribute["dataType"]:
                problems.append(
                    ConfigProblem(
                        "", "activity_fields",
                        f"Attribute {api_name} exists in Marketo as {present['dataType']}, not {attribute['dataType']}; "
                        "a post-call analysis key used by several agents must have one data type.",
                    )
                )
        missing = {api_name: attribute for api_name, attribute in needed.items() if api_name not in current}
        if current_count + len(missing) > MAX_ACTIVITY_ATTRIBUTES:
            problems.extend(
                ConfigProblem(config.agent_id, "activity_fields", TOO_MANY_FIELDS_MESSAGE)
                for config in configs if config.activity_fields
            )
        if problems or not missing:
            return problems

        return self._add_attributes(list(missing.values()))

    def _add_attributes(self, attributes: list[dict]) -> list[ConfigProblem]:
        api_name = CONVERSATION_ACTIVITY.api_name
        try:
            self.client.create_custom_activity_attributes(api_name, attributes)
            self.client.approve_custom_activity_type(api_name)
        except MarketoError as error:
            try:
                self.client.discard_custom_activity_type_draft(api_name)
            except MarketoError:
                logger.warning("config.discard_draft_failed connection=%s", self.connection.pk)
            return [ConfigProblem("", "activity_fields", f"Marketo refused the new activity attributes, so nothing was saved: {error}")]
        logger.info(
            "config.attributes_added connection=%s attributes=%s",
            self.connection.pk, [attribute["apiName"] for attribute in attributes],
        )
        return []

    def _check_lead_fields(self, configs) -> list[ConfigProblem]:
        problems = []
        fields = None
        for config in configs:
            if not config.field_updates:
                continue
            if fields is None:
                fields = metadata.lead_fields(self.connection, self.client)
            for index, item in enumerate(config.field_updates):
                spec = fields.get(item["marketo_field"])
                path = f"field_updates[{index}].marketo_field"
                if spec is None:
                    problems.append(ConfigProblem(config.agent_id, path, f"{item['marketo_field']!r} is not a lead field in Marketo (REST API name)."))
                elif not spec.get("updateable", True):
                    problems.append(ConfigProblem(config.agent_id, path, f"{item['marketo_field']!r} is read-only in Marketo."))
                else:
                    source_type = _source_type(item["source"], config)
                    if source_type and spec["dataType"] not in COMPATIBLE_TYPES.get(source_type, {spec["dataType"]}):
                        problems.append(
                            ConfigProblem(
                                config.agent_id, path,
                                f"Source {item['source']!r} ({source_type}) can't be written to {item['marketo_field']!r} ({spec['dataType']}).",
                            )
                        )
        return problems

    def _check_rules(self, configs) -> list[ConfigProblem]:
        problems = []
        for config in configs:
            for index, rule in enumerate(config.rules or []):
                program = metadata.program(self.connection, self.client, rule["program"])
                if program is None:
                    problems.append(ConfigProblem(config.agent_id, f"enrollment_rules[{index}].program", f"Program {rule['program']!r} was not found in Marketo."))
                    continue
                statuses = metadata.program_statuses(self.connection, self.client, program)
                if rule["status"] not in statuses:
                    problems.append(
                        ConfigProblem(
                            config.agent_id, f"enrollment_rules[{index}].status",
                            f"{rule['status']!r} is not a status of program {program['name']!r}; use one of {', '.join(statuses)}.",
                        )
                    )
        return problems


def _source_type(source: str, config) -> str | None:
    from agents.sources import SOURCE_DATA_TYPES

    if source.startswith("pca:"):
        for item in config.analysis_fields or []:
            if item["key"] == source[4:]:
                return item["data_type"]
        return None
    return SOURCE_DATA_TYPES.get(source)


def _needed_attributes(configs, existing) -> dict[str, dict]:
    """Optional attributes every agent of the organization needs after this save."""
    needed = {}
    configured = {config.agent_id for config in configs}
    for config in configs:
        agent = existing.get(config.agent_id)
        fields = config.activity_fields
        if fields is None:
            fields = list(agent.writeback.activity_fields) if agent and hasattr(agent, "writeback") else []
        if config.analysis_fields is not None:
            analysis = {item["key"]: (item["label"], item["data_type"]) for item in config.analysis_fields}
        elif agent is not None:
            analysis = {item.key: (item.label, item.data_type) for item in agent.analysis_fields.all()}
        else:
            analysis = {}
        needed.update(optional_attributes(fields, analysis))

    for agent_id, agent in existing.items():
        if agent_id in configured or not hasattr(agent, "writeback"):
            continue
        analysis = {item.key: (item.label, item.data_type) for item in agent.analysis_fields.all()}
        fields = [key for key in agent.writeback.activity_fields if not key.startswith("pca:") or key[4:] in analysis]
        needed.update(optional_attributes(fields, analysis))
    return needed
