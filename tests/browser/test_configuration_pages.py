"""The settings pages and the admin in Debian's Chromium: configure, hit each limit, stay in one's organization."""

import re

import pytest

from agents.models import AgentWriteback
from agents.writeback_config import TOO_MANY_FIELDS_MESSAGE, TOO_MANY_RULES_MESSAGE, apply_config
from integrations.models import MarketoConnection
from tests.web.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    MUNCHKIN_ID,
    PASSWORD,
    add_attributes_by_hand,
    connect,
    make_agent,
    make_org,
    make_org_admin,
    make_staff,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/login/")
    page.fill('input[name="username"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button:has-text("Sign in")')


def open_agent(page, live_server, agent):
    page.goto(f"{live_server.url}/settings/agents/{agent.pk}/marketo/")


def test_staff_configures_agent_in_admin(page, screenshot, live_server, marketo_sandbox):
    organization = make_org("acme", "Acme")
    connect(organization, marketo_sandbox.url)
    agent = make_agent(organization, "agt_pricing", "Pricing page SDR")
    make_staff()

    page.goto(f"{live_server.url}/admin/login/")
    page.fill('input[name="username"]', "cs@docket.example")
    page.fill('input[name="password"]', PASSWORD)
    page.click('input[type="submit"]')
    page.goto(f"{live_server.url}/admin/agents/agent/{agent.pk}/change/")
    page.check('input[name="writeback-0-marketo_enabled"]')
    page.check('input[name="writeback-0-activity_sync"]')
    page.check('input[name="writeback-0-activity_fields"][value="utm_campaign"]')
    page.click("text=Add another Enrollment rule")
    page.select_option('select[name="enrollment_rules-0-trigger"]', "meeting_booked")
    page.fill('input[name="enrollment_rules-0-status_name"]', "Meeting Booked")
    screenshot("admin-agent-change")
    page.click('input[name="_save"]')

    page.wait_for_selector("text=was changed successfully")
    screenshot("admin-agent-saved")
    writeback = AgentWriteback.objects.get(agent=agent)
    assert writeback.activity_fields == ["utm_campaign"]
    assert agent.enrollment_rules.get().status_name == "Meeting Booked"

    page.goto(f"{live_server.url}/admin/integrations/marketoconnection/{organization.marketo_connection.pk}/change/")
    screenshot("admin-connection-change")
    assert page.locator('input[name="client_secret"]').input_value() == ""
    page.goto(f"{live_server.url}/admin/integrations/marketoconnection/{organization.marketo_connection.pk}/usage/")
    screenshot("admin-connection-usage")
    assert page.locator("text=Marketo's own usage report").count() == 1


def test_customer_connects_and_configures_agent(page, screenshot, live_server, marketo_sandbox):
    organization = make_org("acme", "Acme")
    # Staff pointed this workspace at the sandbox in the admin; customers can't set a base URL.
    MarketoConnection.objects.create(organization=organization, munchkin_id=MUNCHKIN_ID, client_id="", base_url_override=marketo_sandbox.url)
    agent = make_agent(organization, "agt_pricing", "Pricing page SDR")
    other = make_agent(organization, "agt_support", "Support bot")
    make_org_admin(organization, "admin@acme.example")

    sign_in(page, live_server, "admin@acme.example")
    page.wait_for_selector("text=Settings → Integrations → Marketo")
    screenshot("settings-marketo-not-connected")
    page.fill('input[name="munchkin_id"]', MUNCHKIN_ID)
    page.fill('input[name="client_id"]', CLIENT_ID)
    page.fill('input[name="client_secret"]', CLIENT_SECRET)
    page.click('button:has-text("Connect")')
    page.wait_for_selector("#connection-status:has-text('Connected')")
    screenshot("settings-marketo-connected")
    assert page.locator('input[name="client_secret"]').input_value() == ""

    page.click("text=Marketing Agent Configuration")
    screenshot("settings-agent-list")
    page.click(f"tr:has-text('Pricing page SDR') >> text=Analysis and Actions → Marketo")
    page.wait_for_selector("#slots")
    assert page.locator("#slots-left").inner_text() == "7"
    screenshot("settings-agent-marketo")

    page.check("#id_marketo_enabled")
    page.check("#id_lead_sync")
    page.check("#id_activity_sync")
    page.check("#id_program_enrollment")
    page.check('input[name="activity_fields"][value="utm_source"]')
    page.check('input[name="activity_fields"][value="click_id"]')
    assert "Saving adds 2 attributes, leaving 5." in page.locator("#slots-after").inner_text()
    page.click('button:has-text("Add field update")')
    page.select_option('select[name="updates-0-source"]', "first_touch.utm_source")
    page.select_option('select[name="updates-0-marketo_field"]', "firstTouchUtmSource")
    page.select_option('select[name="updates-0-mode"]', "fill_if_empty")
    page.click('button:has-text("Add enrollment rule")')
    page.select_option('select[name="rules-0-trigger"]', "meeting_booked")
    # The guide's default status for the trigger is filled in by the page.
    assert page.locator('select[name="rules-0-status"]').input_value() == "Meeting Booked"
    screenshot("settings-agent-marketo-filled")
    page.click("#save")

    page.wait_for_selector("text=Saved the Marketo configuration of Pricing page SDR.")
    screenshot("settings-agent-marketo-saved")
    writeback = AgentWriteback.objects.get(agent=agent)
    assert (writeback.marketo_enabled, writeback.lead_sync, writeback.activity_sync, writeback.program_enrollment) == (True, True, True, True)
    assert writeback.activity_fields == ["utm_source", "click_id"]
    assert agent.field_mappings.get().marketo_field == "firstTouchUtmSource"
    assert agent.enrollment_rules.get().status_name == "Meeting Booked"
    assert page.locator("#slots-left").inner_text() == "5"
    assert AgentWriteback.objects.get(agent=other).activity_fields == []


def five_rules(organization, agent):
    rules = [
        {"id": f"rule-{number}", "trigger": "custom_criteria", "criteria": f"Enroll visitors of segment {number}.",
         "program": "Docket Engagement", "status": "Engaged"}
        for number in range(1, 6)
    ]
    apply_config(organization, {"agents": [{"id": agent.external_id, "enrollment_rules": rules}]})


def test_sixth_rule_refused(page, screenshot, live_server, marketo_sandbox):
    organization = make_org("acme", "Acme")
    connect(organization, marketo_sandbox.url)
    agent = make_agent(organization, "agt_pricing", "Pricing page SDR")
    five_rules(organization, agent)
    make_org_admin(organization, "admin@acme.example")

    sign_in(page, live_server, "admin@acme.example")
    open_agent(page, live_server, agent)
    add_rule = page.locator('button:has-text("Add enrollment rule")')
    assert add_rule.is_disabled()
    assert page.locator("#rules-full").is_visible()
    assert page.locator("#rules-full").inner_text() == TOO_MANY_RULES_MESSAGE

    # Marking a rule for removal frees a row, and unmarking it takes the row back.
    page.check('input[name="rules-0-DELETE"]')
    assert add_rule.is_enabled()
    assert page.locator("#rules-full").is_hidden()
    page.uncheck('input[name="rules-0-DELETE"]')
    assert add_rule.is_disabled()

    # A page changed by hand, or left open while someone else added rules,
    # can still post a 6th rule, and the server rejects it.
    page.evaluate("document.querySelector('[data-add-row=rules]').disabled = false")
    add_rule.click()
    page.select_option('select[name="rules-5-trigger"]', "meeting_booked")
    page.click("#save")

    page.wait_for_selector("#top-errors")
    assert TOO_MANY_RULES_MESSAGE in page.locator("#top-errors").inner_text()
    assert TOO_MANY_RULES_MESSAGE in page.locator("#rule-errors").inner_text()
    page.locator("#enrollment-rules").scroll_into_view_if_needed()
    screenshot("settings-sixth-rule-refused")
    assert agent.enrollment_rules.count() == 5


def test_twenty_first_field_refused(page, screenshot, live_server, marketo_sandbox):
    organization = make_org("acme", "Acme")
    connect(organization, marketo_sandbox.url)
    add_attributes_by_hand(marketo_sandbox.url, 6)
    agent = make_agent(organization, "agt_pricing", "Pricing page SDR")
    make_org_admin(organization, "admin@acme.example")

    sign_in(page, live_server, "admin@acme.example")
    open_agent(page, live_server, agent)
    assert page.locator("#slots-left").inner_text() == "1"
    page.check('input[name="activity_fields"][value="utm_source"]')
    page.check('input[name="activity_fields"][value="utm_medium"]')
    assert "saving will be refused" in page.locator("#slots-after").inner_text()
    screenshot("settings-twenty-first-field-selected")
    page.click("#save")

    page.wait_for_selector("#top-errors")
    assert TOO_MANY_FIELDS_MESSAGE in page.locator("#top-errors").inner_text()
    assert TOO_MANY_FIELDS_MESSAGE in page.locator("#activity-field-errors").inner_text()
    screenshot("settings-twenty-first-field-refused")
    assert AgentWriteback.objects.get(agent=agent).activity_fields == []


def test_other_orgs_agent_is_404(page, screenshot, live_server):
    org_a = make_org("alpha", "Alpha")
    org_b = make_org("beta", "Beta")
    make_agent(org_a, "agt_a", "Alpha agent")
    agent_b = make_agent(org_b, "agt_b", "Beta agent")
    make_org_admin(org_a, "admin@alpha.example")

    sign_in(page, live_server, "admin@alpha.example")
    page.wait_for_url(re.compile(r".*/settings/integrations/marketo/$"))
    response = page.goto(f"{live_server.url}/settings/agents/{agent_b.pk}/marketo/")

    assert response.status == 404
    assert "Beta agent" not in page.content()
    screenshot("settings-other-org-404")
