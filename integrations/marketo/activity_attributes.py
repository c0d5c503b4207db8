"""Usage of the Docket Conversation attributes, and removal of one no agent writes.

The product never removes an attribute from the shared activity type on its
own, because an attribute may contain history an admin relies on. Staff can
remove one that no agent writes, which frees a slot under the 20-attribute cap.
"""

import logging

from agents.models import Agent
from integrations.audit import record_change
from integrations.marketo.assets import CONVERSATION_ACTIVITY
from integrations.marketo.client import MarketoClient
from integrations.marketo.config_checks import optional_attributes
from integrations.marketo.exceptions import MarketoError
from integrations.models import MarketoConnection

logger = logging.getLogger(__name__)

MANDATORY_API_NAMES = {CONVERSATION_ACTIVITY.primary.api_name} | {
    spec.api_name for spec in CONVERSATION_ACTIVITY.attributes
}


class AttributeRemovalError(Exception):
    """An attribute that can't be removed; the message gives the reason."""


def attribute_usage(connection: MarketoConnection, client=None) -> list[dict]:
    """Return the type's live attributes with whether each is mandatory and which agents write it."""
    client = client or MarketoClient.for_connection(connection)
    described = client.describe_custom_activity_type(CONVERSATION_ACTIVITY.api_name, draft=True) or {}
    attributes = list(described.get("attributes", []))
    primary = described.get("primaryAttribute")
    if primary and all(item.get("apiName") != primary.get("apiName") for item in attributes):
        attributes.insert(0, primary)

    users = _agents_by_attribute(connection)
    return [
        {
            "api_name": item.get("apiName"),
            "name": item.get("name", item.get("apiName")),
            "data_type": item.get("dataType", ""),
            "mandatory": item.get("apiName") in MANDATORY_API_NAMES,
            "used_by": users.get(item.get("apiName"), []),
        }
        for item in attributes
    ]


def remove_unused_attribute(connection: MarketoConnection, api_name: str, *, actor: str, client=None):
    """Delete one attribute no agent writes from the Docket Conversation type and approve the type."""
    if api_name in MANDATORY_API_NAMES:
        raise AttributeRemovalError(f"Attribute {api_name} is mandatory on Docket Conversation and can't be removed.")
    users = _agents_by_attribute(connection).get(api_name, [])
    if users:
        raise AttributeRemovalError(
            f"Attribute {api_name} is written by {', '.join(users)}; remove it from those agents' activity fields first."
        )

    client = client or MarketoClient.for_connection(connection)
    type_api_name = CONVERSATION_ACTIVITY.api_name
    try:
        client.delete_custom_activity_attributes(type_api_name, [api_name])
        client.approve_custom_activity_type(type_api_name)
    except MarketoError as error:
        raise AttributeRemovalError(f"Marketo rejected the removal of {api_name}: {error}") from error

    record_change(
        connection.organization, actor, "remove_activity_attribute", "ActivityType", type_api_name, {"removed": api_name}
    )
    logger.info("marketo.attribute.removed connection=%s attribute=%s", connection.pk, api_name)


def _agents_by_attribute(connection: MarketoConnection) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    agents = Agent.objects.filter(organization=connection.organization).select_related("writeback").prefetch_related(
        "analysis_fields"
    )
    for agent in agents:
        writeback = getattr(agent, "writeback", None)
        if writeback is None:
            continue
        analysis = {item.key: (item.label, item.data_type) for item in agent.analysis_fields.all()}
        fields = [key for key in writeback.activity_fields if not key.startswith("pca:") or key[4:] in analysis]
        for api_name in optional_attributes(fields, analysis):
            users.setdefault(api_name, []).append(agent.name or agent.external_id)
    return users
