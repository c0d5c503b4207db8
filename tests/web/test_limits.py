"""The 5-rule and 20-attribute limits through every path: model, database, JSON apply and admin."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from agents.models import Agent, AgentWriteback, PostCallAnalysisField
from agents.writeback_config import TOO_MANY_FIELDS_MESSAGE, TOO_MANY_RULES_MESSAGE, ConfigError, apply_config
from enrollment.models import EnrollmentRule
from tests.web.helpers import PASSWORD, add_attributes_by_hand, connect, conversation_attribute_names, make_agent, make_org, make_staff

pytestmark = pytest.mark.django_db


def add_rules(agent, count):
    for slot in range(1, count + 1):
        EnrollmentRule.objects.create(
            agent=agent, slot=slot, rule_key=f"rule-{slot}", trigger="conversation_completed",
            program="Docket Engagement", status_name="Engaged",
        )


# --- Model and database --------------------------------------------------------------

def test_model_clean_rejects_sixth_rule():
    agent = make_agent(make_org("acme"), "agt_1")
    add_rules(agent, 5)
    sixth = EnrollmentRule(agent=agent, slot=5, rule_key="rule-6", trigger="meeting_booked", status_name="Meeting Booked")

    with pytest.raises(ValidationError) as raised:
        sixth.full_clean()

    assert TOO_MANY_RULES_MESSAGE in raised.value.messages


def test_database_rejects_slot_six():
    agent = make_agent(make_org("acme"), "agt_1")

    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentRule.objects.create(
            agent=agent, slot=6, rule_key="rule-6", trigger="meeting_booked", status_name="Meeting Booked"
        )


def test_database_rejects_reused_slot():
    agent = make_agent(make_org("acme"), "agt_1")
    add_rules(agent, 1)

    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentRule.objects.create(
            agent=agent, slot=1, rule_key="rule-other", trigger="meeting_booked", status_name="Meeting Booked"
        )


# --- JSON apply ---------------------------------------------------------------------------

def json_rule(number):
    return {"id": f"rule-{number}", "trigger": "conversation_completed", "program": "Docket Engagement", "status": "Engaged"}


def test_apply_config_rejects_sixth_rule():
    organization = make_org("acme")
    document = {"agents": [{"id": "agt_1", "enrollment_rules": [json_rule(n) for n in range(1, 7)]}]}

    with pytest.raises(ConfigError) as raised:
        apply_config(organization, document)

    assert any(TOO_MANY_RULES_MESSAGE in problem.reason for problem in raised.value.problems)
    assert not Agent.objects.filter(organization=organization).exists()


def test_apply_config_rejects_twenty_first_field(marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    add_attributes_by_hand(marketo_sandbox.url, 6)
    document = {"agents": [{"id": "agt_1", "activity_fields": ["utm_source", "utm_medium"]}]}

    with pytest.raises(ConfigError) as raised:
        apply_config(organization, document)

    assert [problem.reason for problem in raised.value.problems] == [TOO_MANY_FIELDS_MESSAGE]
    assert "utmSource" not in conversation_attribute_names(organization)


def test_apply_config_without_connection_counts_fields():
    organization = make_org("acme")
    make_analysis = [{"key": f"field_{n}", "label": f"Field {n}", "data_type": "string"} for n in range(1, 4)]
    document = {
        "agents": [{
            "id": "agt_1",
            "post_call_analysis_fields": make_analysis,
            "activity_fields": ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"]
            + [f"pca:field_{n}" for n in range(1, 4)],
        }]
    }

    with pytest.raises(ConfigError) as raised:
        apply_config(organization, document)

    assert TOO_MANY_FIELDS_MESSAGE in [problem.reason for problem in raised.value.problems]


# --- Admin ------------------------------------------------------------------------------------

def admin_agent_data(agent, *, activity_fields=(), rules=(), writeback_id=None) -> dict:
    """Form data of the Agent change page with its four inlines."""
    data = {
        "organization": str(agent.organization_id),
        "external_id": agent.external_id,
        "name": agent.name,
        "writeback-TOTAL_FORMS": "1",
        "writeback-INITIAL_FORMS": "1" if writeback_id else "0",
        "writeback-MIN_NUM_FORMS": "1",
        "writeback-MAX_NUM_FORMS": "1",
        "writeback-0-marketo_enabled": "on",
        "writeback-0-activity_sync": "on",
        "writeback-0-activity_fields": list(activity_fields),
        "writeback-0-agent": str(agent.pk),
        "analysis_fields-TOTAL_FORMS": "0",
        "analysis_fields-INITIAL_FORMS": "0",
        "analysis_fields-MIN_NUM_FORMS": "0",
        "analysis_fields-MAX_NUM_FORMS": "1000",
        "field_mappings-TOTAL_FORMS": "0",
        "field_mappings-INITIAL_FORMS": "0",
        "field_mappings-MIN_NUM_FORMS": "0",
        "field_mappings-MAX_NUM_FORMS": "1000",
        "enrollment_rules-TOTAL_FORMS": str(len(rules)),
        "enrollment_rules-INITIAL_FORMS": "0",
        "enrollment_rules-MIN_NUM_FORMS": "0",
        "enrollment_rules-MAX_NUM_FORMS": "5",
    }
    if writeback_id:
        data["writeback-0-id"] = str(writeback_id)
    for index, item in enumerate(rules):
        for key, value in item.items():
            data[f"enrollment_rules-{index}-{key}"] = value
        data[f"enrollment_rules-{index}-agent"] = str(agent.pk)
    return data


def admin_rule(number):
    # Distinct criteria, because two rules with the same trigger, program,
    # status and criteria are rejected as repeats.
    return {"rule_key": f"rule-{number}", "trigger": "custom_criteria", "criteria": f"Enroll visitors of segment {number}.",
            "program": "Docket Engagement", "status_name": "Engaged"}


@pytest.fixture
def staff_client(client):
    make_staff()
    client.login(username="cs@docket.example", password=PASSWORD)
    return client


def test_admin_inline_refuses_sixth_rule(staff_client):
    agent = make_agent(make_org("acme"), "agt_1", "Pricing")
    url = reverse("admin:agents_agent_change", args=[agent.pk])

    response = staff_client.post(url, admin_agent_data(agent, rules=[admin_rule(n) for n in range(1, 7)], writeback_id=agent.writeback.pk))

    assert response.status_code == 200
    assert TOO_MANY_RULES_MESSAGE in response.content.decode()
    assert agent.enrollment_rules.count() == 0


def test_admin_inline_saves_five_rules(staff_client):
    agent = make_agent(make_org("acme"), "agt_1", "Pricing")
    url = reverse("admin:agents_agent_change", args=[agent.pk])

    response = staff_client.post(url, admin_agent_data(agent, rules=[admin_rule(n) for n in range(1, 6)], writeback_id=agent.writeback.pk))

    assert response.status_code == 302
    assert sorted(agent.enrollment_rules.values_list("slot", flat=True)) == [1, 2, 3, 4, 5]


def test_admin_sixth_rule_after_five_saved(staff_client):
    agent = make_agent(make_org("acme"), "agt_1", "Pricing")
    add_rules(agent, 5)
    url = reverse("admin:agents_agent_change", args=[agent.pk])
    data = admin_agent_data(agent, rules=[admin_rule(6)], writeback_id=agent.writeback.pk)

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert TOO_MANY_RULES_MESSAGE in response.content.decode()
    assert agent.enrollment_rules.count() == 5


def test_admin_refuses_twenty_first_field(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    add_attributes_by_hand(marketo_sandbox.url, 6)
    agent = make_agent(organization, "agt_1", "Pricing")
    url = reverse("admin:agents_agent_change", args=[agent.pk])
    data = admin_agent_data(agent, activity_fields=["utm_source", "utm_medium"], writeback_id=agent.writeback.pk)

    response = staff_client.post(url, data)

    assert response.status_code == 200
    assert TOO_MANY_FIELDS_MESSAGE in response.content.decode()
    writeback = AgentWriteback.objects.get(agent=agent)
    assert writeback.activity_fields == []
    assert writeback.marketo_enabled is False
    assert "utmSource" not in conversation_attribute_names(organization)


def test_admin_saves_field_through_marketo(staff_client, marketo_sandbox):
    organization = make_org("acme")
    connect(organization, marketo_sandbox.url)
    agent = make_agent(organization, "agt_1", "Pricing")
    url = reverse("admin:agents_agent_change", args=[agent.pk])
    data = admin_agent_data(agent, activity_fields=["utm_source"], writeback_id=agent.writeback.pk)

    response = staff_client.post(url, data)

    assert response.status_code == 302
    assert AgentWriteback.objects.get(agent=agent).activity_fields == ["utm_source"]
    assert "utmSource" in conversation_attribute_names(organization)
    assert organization.audit_log.filter(action="admin.change_agent").exists()


def test_admin_offers_analysis_fields(staff_client):
    agent = make_agent(make_org("acme"), "agt_1", "Pricing")
    PostCallAnalysisField.objects.create(agent=agent, key="budget_range", label="Budget Range")

    html = staff_client.get(reverse("admin:agents_agent_change", args=[agent.pk])).content.decode()

    assert 'value="pca:budget_range"' in html
    assert "Post-call analysis: Budget Range" in html
