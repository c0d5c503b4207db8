"""Stored decisions reused through resolve_custom_criteria, with the real evaluator."""

from datetime import datetime, timedelta, timezone

import pytest

from agents.models import Agent, AgentWriteback, Conversation, Organization
from enrollment.decisions import NOT_EVALUATED_REASON, CriteriaEvaluationError, resolve_custom_criteria
from enrollment.models import EnrollmentDecision, EnrollmentRule
from tests.enrollment.fake_openai import (
    completion,
    decision,
    fake_openai,  # noqa: F401 (pytest fixture)
)

pytestmark = pytest.mark.django_db

STARTED_AT = datetime(2025, 3, 4, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def conversation():
    organization = Organization(slug="initech-demo", name="Initech demo")
    organization.issue_ingest_token()
    organization.save()

    agent = Agent.objects.create(organization=organization, external_id="agt_sdr", name="SDR")
    AgentWriteback.objects.create(agent=agent, marketo_enabled=True, program_enrollment=True)
    return Conversation.objects.create(
        organization=organization,
        agent=agent,
        external_id="conv_042",
        visitor_fields={"company": "Initech", "title": "CTO"},
        started_at=STARTED_AT,
        ended_at=STARTED_AT + timedelta(minutes=4),
        summary="The CTO asked about SSO and pricing.",
        transcript=[
            {"role": "visitor", "text": "Do you support SSO on the enterprise plan?"},
            {"role": "agent", "text": "Yes, SAML SSO is included."},
        ],
        post_call_analysis={"budget_range": "50k-100k"},
    )


@pytest.fixture
def rule(conversation):
    return EnrollmentRule.objects.create(
        agent=conversation.agent,
        slot=1,
        rule_key="sso-interest",
        trigger=EnrollmentRule.Trigger.CUSTOM_CRITERIA,
        criteria="Enroll if the visitor asked about SSO.",
        program="Docket Engagement",
        status_name="Engaged",
    )


def test_decision_stored_and_reused(fake_openai, rule, conversation):
    fake_openai.script(decision(True, "The visitor asked about SSO.", ["Do you support SSO"]))

    first = resolve_custom_criteria(rule, conversation)
    second = resolve_custom_criteria(rule, conversation)

    assert len(fake_openai.requests) == 1
    assert first.enroll is True
    assert second.decision.pk == first.decision.pk

    stored = EnrollmentDecision.objects.get()
    assert stored.outcome == EnrollmentDecision.Outcome.ENROLL
    assert stored.rule_version == 1
    assert stored.reason == "The visitor asked about SSO."
    assert stored.evidence == ["Do you support SSO"]
    assert stored.model == "gpt-4o-mini-2024-07-18"
    assert stored.error == ""


def test_do_not_enroll_reused(fake_openai, rule, conversation):
    fake_openai.script(decision(False, "No SSO question was asked.", []))

    first = resolve_custom_criteria(rule, conversation)
    second = resolve_custom_criteria(rule, conversation)

    assert len(fake_openai.requests) == 1
    assert first.enroll is False
    assert second.settles_record is True
    assert second.record_reason == "Custom criteria not met: No SSO question was asked."


def test_changed_criteria_evaluated_again(fake_openai, rule, conversation):
    fake_openai.script(
        decision(True, "The visitor asked about SSO.", ["Do you support SSO"]),
        decision(False, "No budget above 200k was mentioned.", ["50k-100k"]),
    )
    resolve_custom_criteria(rule, conversation)

    rule.criteria = "Enroll if the budget is above 200k."
    rule.version += 1
    rule.save()
    outcome = resolve_custom_criteria(rule, conversation)

    assert len(fake_openai.requests) == 2
    assert "Enroll if the budget is above 200k." in fake_openai.requests[1].body["messages"][1]["content"]
    assert outcome.enroll is False
    assert outcome.decision.rule_version == 2
    versions = sorted(EnrollmentDecision.objects.values_list("rule_version", "outcome"))
    assert versions == [(1, "enroll"), (2, "do_not_enroll")]


def test_missing_key_not_evaluated(fake_openai, rule, conversation, settings):
    settings.OPENAI_API_KEY = ""

    outcome = resolve_custom_criteria(rule, conversation)

    assert fake_openai.requests == []
    assert outcome.decision.outcome == EnrollmentDecision.Outcome.NOT_EVALUATED
    assert outcome.enroll is False
    assert outcome.record_reason == NOT_EVALUATED_REASON


def test_error_stored_and_evaluated_again(fake_openai, rule, conversation):
    fake_openai.script(completion("not json"), decision(True, "The visitor asked about SSO.", ["SSO"]))

    with pytest.raises(CriteriaEvaluationError, match="invalid JSON"):
        resolve_custom_criteria(rule, conversation)

    failed = EnrollmentDecision.objects.get()
    assert failed.outcome == EnrollmentDecision.Outcome.ERROR
    assert "invalid JSON" in failed.error

    outcome = resolve_custom_criteria(rule, conversation)

    assert len(fake_openai.requests) == 2
    assert outcome.enroll is True
    assert outcome.decision.pk == failed.pk
    assert outcome.decision.error == ""


def test_not_evaluated_evaluated_once_key_set(fake_openai, rule, conversation, settings):
    api_key = settings.OPENAI_API_KEY
    settings.OPENAI_API_KEY = ""
    resolve_custom_criteria(rule, conversation)

    settings.OPENAI_API_KEY = api_key
    fake_openai.script(decision(True, "The visitor asked about SSO.", ["SSO"]))
    outcome = resolve_custom_criteria(rule, conversation)

    assert len(fake_openai.requests) == 1
    assert outcome.decision.outcome == EnrollmentDecision.Outcome.ENROLL
    assert EnrollmentDecision.objects.count() == 1
