"""Builders shared by the web and browser tests: organizations, admins, agents, a connected sandbox."""

import requests
from django.contrib.auth import get_user_model

from agents.models import Agent, AgentWriteback, Organization, OrganizationMembership
from integrations.marketo.connect import connect_marketo

MUNCHKIN_ID = "417-QWE-902"
CLIENT_ID = "docket-demo-client"
CLIENT_SECRET = "docket-demo-secret"
PASSWORD = "correct-horse-battery-9"


def make_org(slug: str, name: str | None = None) -> Organization:
    organization = Organization(slug=slug, name=name or slug.title())
    organization.issue_ingest_token()
    organization.save()
    return organization


def make_org_admin(organization: Organization, email: str):
    user = get_user_model().objects.create_user(username=email, email=email, password=PASSWORD)
    OrganizationMembership.objects.create(user=user, organization=organization)
    return user


def make_staff(username: str = "cs@docket.example"):
    return get_user_model().objects.create_superuser(username=username, email=username, password=PASSWORD)


def make_agent(organization: Organization, external_id: str, name: str = "") -> Agent:
    agent = Agent.objects.create(organization=organization, external_id=external_id, name=name)
    AgentWriteback.objects.create(agent=agent)
    return agent


def connect(organization: Organization, sandbox_url: str):
    """Run the real connection flow against the sandbox."""
    return connect_marketo(
        organization,
        munchkin_id=MUNCHKIN_ID,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=sandbox_url,
        actor="test-setup",
    )


def add_attributes_by_hand(sandbox_url: str, count: int, prefix: str = "manual"):
    """Add attributes to the live Docket Conversation type, as a Marketo admin would in the UI."""
    for number in range(1, count + 1):
        response = requests.post(
            f"{sandbox_url}/_sandbox/add_activity_attribute",
            json={
                "apiName": "docketConversation",
                "attribute": {"apiName": f"{prefix}Field{number}", "name": f"Manual Field {number}", "dataType": "string"},
            },
            timeout=10,
        )
        response.raise_for_status()


def conversation_attribute_names(organization: Organization) -> set[str]:
    """Return the apiNames the live Docket Conversation type holds, primary included."""
    from integrations.marketo.client import MarketoClient

    connection = organization.marketo_connection
    described = MarketoClient.for_connection(connection).describe_custom_activity_type("docketConversation", draft=True)
    names = {attribute["apiName"] for attribute in described["attributes"]}
    names.add(described["primaryAttribute"]["apiName"])
    return names
