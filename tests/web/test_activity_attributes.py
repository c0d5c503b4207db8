"""Staff removal of Docket Conversation attributes that no agent writes."""

import pytest
from django.urls import reverse

from agents.writeback_config import apply_config
from integrations.models import AuditLogEntry
from tests.web.helpers import PASSWORD, add_attributes_by_hand, connect, make_org, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    make_staff()
    client.login(username="cs@docket.example", password=PASSWORD)
    return client


def live_attribute_names(sandbox) -> set[str]:
    record = sandbox.state.activity_types["docketConversation"]
    version = record["draft"] or record["approved"]
    return {item["apiName"] for item in version["attributes"]}


def page_url(connection):
    return reverse("admin:integrations_marketoconnection_attributes", args=[connection.pk])


def test_page_lists_attributes_and_writers(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    apply_config(organization, {"agents": [{"id": "agt_1", "name": "Pricing", "activity_fields": ["utm_source"]}]})
    add_attributes_by_hand(marketo_sandbox.url, 1)

    html = staff_client.get(page_url(organization.marketo_connection)).content.decode()

    assert "15 of 20 slots used." in html
    assert "every agent (mandatory)" in html
    assert "Pricing" in html
    assert "manualField1" in html


def test_unused_attribute_removed(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    add_attributes_by_hand(marketo_sandbox.url, 1)

    response = staff_client.post(page_url(organization.marketo_connection), {"api_name": "manualField1"}, follow=True)

    assert "Removed manualField1" in response.content.decode()
    assert "manualField1" not in live_attribute_names(marketo_sandbox)
    assert AuditLogEntry.objects.filter(action="remove_activity_attribute").exists()


def test_attribute_in_use_kept(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    apply_config(organization, {"agents": [{"id": "agt_1", "name": "Pricing", "activity_fields": ["utm_source"]}]})

    response = staff_client.post(page_url(organization.marketo_connection), {"api_name": "utmSource"}, follow=True)

    assert "Attribute utmSource is written by Pricing" in response.content.decode()
    assert "utmSource" in live_attribute_names(marketo_sandbox)


def test_mandatory_attribute_kept(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)

    response = staff_client.post(page_url(organization.marketo_connection), {"api_name": "fullTranscript"}, follow=True)

    assert "mandatory" in response.content.decode()
    assert "fullTranscript" in live_attribute_names(marketo_sandbox)
