"""The agent's Marketo page: live slots, saving through apply_config, the limits and their messages."""

import pytest
from django.urls import reverse

from agents.models import AgentWriteback
from agents.writeback_config import TOO_MANY_FIELDS_MESSAGE, TOO_MANY_RULES_MESSAGE
from tests.web.forms_data import agent_page_data, rule
from tests.web.helpers import (
    PASSWORD,
    add_attributes_by_hand,
    connect,
    conversation_attribute_names,
    make_agent,
    make_org,
    make_org_admin,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client, marketo_sandbox):
    organization = make_org("acme", "Acme")
    connect(organization, marketo_sandbox.url)
    agent = make_agent(organization, "agt_pricing", "Pricing page SDR")
    other = make_agent(organization, "agt_support", "Support bot")
    make_org_admin(organization, "admin@acme.example")
    client.login(username="admin@acme.example", password=PASSWORD)
    return organization, agent, other


def page_url(agent):
    return reverse("agent-marketo", args=[agent.pk])


def test_page_shows_mandatory_fields_and_slots(client, setup):
    _, agent, _ = setup

    response = client.get(page_url(agent))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Marketing Agent Configuration" in html
    assert "Analysis and Actions → Marketo" in html
    for name in ("Visitor Email", "Full Transcript", "Updated by Docket", "Conversation ID"):
        assert name in html
    assert html.count("checked disabled") == 13
    # The fresh type contains the 13 mandatory attributes, so 7 slots are left.
    assert 'data-slots-left="7"' in html
    assert "Create new leads or update existing ones based on Docket conversations." in html
    assert "Create custom activities for Docket conversations or meetings booked via Docket." in html
    assert "Configure rules for a lead to be enrolled in a Marketo program based on trigger criteria." in html


def test_page_lists_programs_default_first(client, setup):
    _, agent, _ = setup

    html = client.get(page_url(agent)).content.decode()

    program_select = html[html.index('name="rules-__prefix__-program"'):]
    first_option = program_select[program_select.index("<option"):program_select.index("</option>")]
    assert "Docket Engagement" in first_option
    assert "Enterprise Nurture" in program_select


def test_save_writes_configuration(client, setup):
    organization, agent, other = setup
    data = agent_page_data(
        activity_fields=["utm_source", "click_id"],
        updates=[{"source": "first_touch.utm_source", "marketo_field": "firstTouchUtmSource", "mode": "fill_if_empty"}],
        rules=[rule("meeting_booked", status="Meeting Booked")],
    )

    response = client.post(page_url(agent), data)

    assert response.status_code == 302
    writeback = AgentWriteback.objects.get(agent=agent)
    assert writeback.marketo_enabled is True
    assert writeback.lead_sync is True
    assert writeback.activity_fields == ["utm_source", "click_id"]
    mapping = agent.field_mappings.get()
    assert (mapping.source, mapping.marketo_field, mapping.mode) == ("first_touch.utm_source", "firstTouchUtmSource", "fill_if_empty")
    saved_rule = agent.enrollment_rules.get()
    assert (saved_rule.trigger, saved_rule.program, saved_rule.status_name) == ("meeting_booked", "Docket Engagement", "Meeting Booked")
    assert {"utmSource", "clickId"} <= conversation_attribute_names(organization)
    other_writeback = AgentWriteback.objects.get(agent=other)
    assert other_writeback.marketo_enabled is False
    assert other_writeback.activity_fields == []


def test_blank_status_takes_trigger_default(client, setup):
    _, agent, _ = setup
    data = agent_page_data(rules=[rule("conversation_completed"), rule("meeting_booked")])

    client.post(page_url(agent), data)

    statuses = list(agent.enrollment_rules.order_by("slot").values_list("status_name", flat=True))
    assert statuses == ["Engaged", "Meeting Booked"]


def test_sixth_rule_refused(client, setup):
    _, agent, _ = setup
    data = agent_page_data(rules=[rule(status="Engaged") for _ in range(6)])

    response = client.post(page_url(agent), data)

    assert response.status_code == 200
    assert TOO_MANY_RULES_MESSAGE in response.content.decode()
    assert agent.enrollment_rules.count() == 0


def test_five_rules_accepted(client, setup):
    _, agent, _ = setup
    data = agent_page_data(
        rules=[rule(trigger="custom_criteria", status="Engaged", criteria=f"Segment {number}.") for number in range(5)]
    )

    response = client.post(page_url(agent), data)

    assert response.status_code == 302
    assert agent.enrollment_rules.count() == 5


def test_twenty_first_field_refused(client, setup, marketo_sandbox):
    organization, agent, _ = setup
    add_attributes_by_hand(marketo_sandbox.url, 5)
    before = conversation_attribute_names(organization)
    data = agent_page_data(activity_fields=["utm_source", "utm_medium", "utm_campaign"])

    response = client.post(page_url(agent), data)

    html = response.content.decode()
    assert response.status_code == 200
    assert TOO_MANY_FIELDS_MESSAGE in html
    assert html.index(TOO_MANY_FIELDS_MESSAGE) < html.index('id="switches"'), "message missing at the top"
    field_errors = html[html.index('id="activity-field-errors"'):]
    assert TOO_MANY_FIELDS_MESSAGE in field_errors[:2000], "message missing beside the fields"
    assert AgentWriteback.objects.get(agent=agent).activity_fields == []
    assert AgentWriteback.objects.get(agent=agent).marketo_enabled is False
    assert conversation_attribute_names(organization) == before


def test_twentieth_field_accepted(client, setup, marketo_sandbox):
    organization, agent, _ = setup
    add_attributes_by_hand(marketo_sandbox.url, 5)
    data = agent_page_data(activity_fields=["utm_source", "utm_medium"])

    response = client.post(page_url(agent), data)

    assert response.status_code == 302
    assert len(conversation_attribute_names(organization)) == 20


def test_page_shows_slots_taken_by_hand(client, setup, marketo_sandbox):
    _, agent, _ = setup
    add_attributes_by_hand(marketo_sandbox.url, 5)

    html = client.get(page_url(agent)).content.decode()

    assert 'data-slots-left="2"' in html
    assert "Manual Field 5" in html


def test_other_agents_fields_take_slots(client, setup):
    organization, agent, other = setup
    other.writeback.activity_fields = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_id"]
    other.writeback.save()
    data = agent_page_data(activity_fields=["click_id_type", "meeting_owner"])

    response = client.post(page_url(agent), data)

    assert TOO_MANY_FIELDS_MESSAGE in response.content.decode()
    assert AgentWriteback.objects.get(agent=agent).activity_fields == []


def test_unknown_status_shown_beside_rule(client, setup):
    _, agent, _ = setup
    data = agent_page_data(rules=[rule("conversation_completed", program="Enterprise Nurture", status="Meeting Booked")])

    response = client.post(page_url(agent), data)

    html = response.content.decode()
    assert response.status_code == 200
    assert "&#x27;Meeting Booked&#x27; is not a status of program &#x27;Enterprise Nurture&#x27;" in html
    assert agent.enrollment_rules.count() == 0


def test_custom_criteria_needs_prompt(client, setup):
    _, agent, _ = setup
    data = agent_page_data(rules=[rule("custom_criteria", criteria="  ")])

    response = client.post(page_url(agent), data)

    assert "Custom criteria rules need a prompt describing when to enroll." in response.content.decode()
    assert agent.enrollment_rules.count() == 0


def test_analysis_field_selectable_after_save(client, setup):
    organization, agent, _ = setup
    analysis = [{"key": "budget_range", "label": "Budget Range", "data_type": "string"}]
    client.post(page_url(agent), agent_page_data(analysis=analysis))

    data = agent_page_data(analysis=analysis, activity_fields=["pca:budget_range"], initial_counts={"analysis": 1})
    response = client.post(page_url(agent), data)

    assert response.status_code == 302
    assert AgentWriteback.objects.get(agent=agent).activity_fields == ["pca:budget_range"]
    assert "pcaBudgetRange" in conversation_attribute_names(organization)


def test_field_update_dropdown_lists_updateable_fields(client, setup):
    _, agent, _ = setup

    html = client.get(page_url(agent)).content.decode()

    template = html[html.index('id="updates-template"'):]
    template = template[:template.index("</template>")]
    assert 'value="firstTouchUtmSource"' in template
    # `id` is read-only in Marketo's describe, so it is not offered.
    assert 'value="id"' not in template


def test_refresh_reloads_lists(client, setup):
    _, agent, _ = setup

    response = client.post(reverse("agent-marketo-refresh", args=[agent.pk]), follow=True)

    assert "Reloaded the lead fields, programs and statuses from Marketo." in response.content.decode()
