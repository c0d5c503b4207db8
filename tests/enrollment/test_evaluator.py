"""The evaluator against the real `openai` client and a fake OpenAI-compatible server."""

import json
import logging
import socket
from datetime import datetime, timedelta, timezone

import pytest

from agents.models import Agent, AgentWriteback, Conversation, Organization, PostCallAnalysisField, Visitor
from enrollment.decisions import CriteriaEvaluationError
from enrollment.evaluator import Verdict, evaluate_criteria
from enrollment.models import EnrollmentRule
from enrollment.prompts import RESPONSE_FORMAT
from tests.enrollment.fake_openai import (
    FAKE_API_KEY,
    ScriptedResponse,
    completion,
    decision,
    delayed,
    error_response,
    fake_openai,  # noqa: F401 (pytest fixture)
    json_response,
    no_choices,
    rate_limited,
    server_error,
)

pytestmark = pytest.mark.django_db

STARTED_AT = datetime(2025, 3, 4, 15, 0, tzinfo=timezone.utc)
CRITERIA = "Enroll if the visitor is from an enterprise company and discussed pricing."
SUMMARY = "Dana from Globex asked about enterprise pricing for 800 seats."
VISITOR_EMAIL = "dana.private@globex.example"


def transcript_messages(count: int) -> list[dict]:
    messages = []
    for index in range(count):
        messages.append(
            {
                "role": "visitor" if index % 2 == 0 else "agent",
                "text": f"message number {index:03d} about seats, pricing and rollout plans",
                "sent_at": (STARTED_AT + timedelta(seconds=30 * index)).isoformat(),
            }
        )
    return messages


@pytest.fixture
def conversation():
    organization = Organization(slug="globex-demo", name="Globex demo")
    organization.issue_ingest_token()
    organization.save()

    agent = Agent.objects.create(organization=organization, external_id="agt_pricing", name="Pricing SDR")
    AgentWriteback.objects.create(agent=agent, marketo_enabled=True, program_enrollment=True)
    PostCallAnalysisField.objects.create(agent=agent, key="budget_range", label="Budget range")
    PostCallAnalysisField.objects.create(agent=agent, key="seat_count", label="Seat count", data_type="integer")

    visitor = Visitor.objects.create(organization=organization, email=VISITOR_EMAIL)
    return Conversation.objects.create(
        organization=organization,
        agent=agent,
        external_id="conv_001",
        visitor=visitor,
        raw_email=VISITOR_EMAIL,
        visitor_fields={"first_name": "Dana", "last_name": "Reyes", "company": "Globex", "title": "VP Sales", "country": "US"},
        started_at=STARTED_AT,
        ended_at=STARTED_AT + timedelta(minutes=6),
        summary=SUMMARY,
        transcript=[
            {"role": "visitor", "text": "Hi, what does the enterprise plan cost?", "sent_at": STARTED_AT.isoformat()},
            {"role": "agent", "text": "Enterprise is priced per seat. How many seats?", "sent_at": STARTED_AT.isoformat()},
            {"role": "visitor", "text": "About 800 seats across three regions.", "sent_at": STARTED_AT.isoformat()},
        ],
        post_call_analysis={"budget_range": "100k-250k", "seat_count": 800, "unlabelled_key": "kept"},
    )


@pytest.fixture
def rule(conversation):
    return EnrollmentRule.objects.create(
        agent=conversation.agent,
        slot=1,
        rule_key="enterprise-pricing",
        trigger=EnrollmentRule.Trigger.CUSTOM_CRITERIA,
        criteria=CRITERIA,
        program="Docket Engagement",
        status_name="Engaged",
        version=3,
    )


def user_prompt(request) -> str:
    return request.body["messages"][1]["content"]


def test_enroll_true_with_evidence(fake_openai, rule, conversation):
    fake_openai.script(decision(True, "Enterprise visitor asked about pricing.", ["800 seats", " what does the enterprise plan cost? "]))

    verdict = evaluate_criteria(rule, conversation)

    assert verdict == Verdict(
        enroll=True,
        reason="Enterprise visitor asked about pricing.",
        evidence=["800 seats", "what does the enterprise plan cost?"],
        model="gpt-4o-mini-2024-07-18",
    )
    assert len(fake_openai.requests) == 1


def test_enroll_false(fake_openai, rule, conversation):
    fake_openai.script(decision(False, "No company size was mentioned.", []))

    verdict = evaluate_criteria(rule, conversation)

    assert verdict.enroll is False
    assert verdict.reason == "No company size was mentioned."
    assert verdict.evidence == []


def test_model_falls_back_to_setting(fake_openai, rule, conversation, settings):
    settings.OPENAI_MODEL = "configured-model"
    fake_openai.script(decision(True, "Matches.", ["pricing"], model="", usage=False))

    verdict = evaluate_criteria(rule, conversation)

    assert verdict.model == "configured-model"


def test_request_contents(fake_openai, rule, conversation):
    fake_openai.script(decision(True, "Matches.", ["pricing"]))

    evaluate_criteria(rule, conversation)

    request = fake_openai.requests[0]
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["response_format"] == RESPONSE_FORMAT
    assert request.body["response_format"]["json_schema"]["strict"] is True
    assert request.body["response_format"]["json_schema"]["schema"]["required"] == ["enroll", "reason", "evidence"]

    system = request.body["messages"][0]
    assert system["role"] == "system"
    assert "insufficient" in system["content"]
    assert "Never invent facts" in system["content"]

    prompt = user_prompt(request)
    assert CRITERIA in prompt
    assert SUMMARY in prompt
    assert "- Budget range (budget_range): 100k-250k" in prompt
    assert "- Seat count (seat_count): 800" in prompt
    assert "- unlabelled_key (unlabelled_key): kept" in prompt
    assert "- Company: Globex" in prompt
    assert "- Title: VP Sales" in prompt
    assert "- Country: US" in prompt
    assert "Visitor: Hi, what does the enterprise plan cost?" in prompt
    assert "Agent: Enterprise is priced per seat. How many seats?" in prompt
    assert "- Email domain: globex.example" in prompt
    assert "dana.private" not in prompt


def test_request_contains_cut_transcript(fake_openai, rule, conversation, settings):
    settings.OPENAI_TRANSCRIPT_TOKEN_BUDGET = 300
    conversation.transcript = transcript_messages(100)
    conversation.save()
    fake_openai.script(decision(False, "Not enough information.", []))

    evaluate_criteria(rule, conversation)

    prompt = user_prompt(fake_openai.requests[0])
    assert "message number 000" in prompt
    assert "message number 099" in prompt
    assert "message number 050" not in prompt
    assert "messages omitted …]" in prompt
    assert "Transcript (100 messages" in prompt


def test_malformed_json_raises(fake_openai, rule, conversation):
    fake_openai.script(completion('{"enroll": true, "reason": "cut off'))

    with pytest.raises(CriteriaEvaluationError, match="invalid JSON"):
        evaluate_criteria(rule, conversation)

    assert len(fake_openai.requests) == 1


def test_refusal_raises(fake_openai, rule, conversation):
    fake_openai.script(completion(None, refusal="I can't help with that request."))

    with pytest.raises(CriteriaEvaluationError, match="returned a refusal") as raised:
        evaluate_criteria(rule, conversation)

    assert "I can't help with that request." in str(raised.value)


@pytest.mark.parametrize(
    ("content", "expected_message"),
    [
        ('{"enroll": true, "reason": "Matches."}', "missing evidence"),
        ('{"reason": "Matches.", "evidence": []}', "missing enroll"),
        ('{"enroll": "yes", "reason": "Matches.", "evidence": []}', "enroll of type str"),
        ('{"enroll": 1, "reason": "Matches.", "evidence": []}', "enroll of type int"),
        ('{"enroll": true, "reason": 5, "evidence": []}', "reason of type int"),
        ('{"enroll": true, "reason": "  ", "evidence": []}', "empty reason"),
        ('{"enroll": true, "reason": "Matches.", "evidence": "pricing"}', "not a list of strings"),
        ('{"enroll": true, "reason": "Matches.", "evidence": [1, 2]}', "not a list of strings"),
        ('{"enroll": true, "reason": "Matches.", "evidence": [], "score": 9}', "unexpected keys score"),
        ('[true, "Matches.", []]', "returned a JSON list"),
        ("", "empty content"),
    ],
)
def test_schema_mismatch_raises(fake_openai, rule, conversation, content, expected_message):
    fake_openai.script(completion(content))

    with pytest.raises(CriteriaEvaluationError, match=expected_message):
        evaluate_criteria(rule, conversation)


def test_no_choices_raises(fake_openai, rule, conversation):
    fake_openai.script(no_choices())

    with pytest.raises(CriteriaEvaluationError, match="no choices"):
        evaluate_criteria(rule, conversation)


def test_output_token_limit_raises(fake_openai, rule, conversation):
    fake_openai.script(completion('{"enroll": true, "reas', finish_reason="length"))

    with pytest.raises(CriteriaEvaluationError, match="output token limit"):
        evaluate_criteria(rule, conversation)


@pytest.mark.parametrize(
    ("body", "expected_message"),
    [
        (b"<html>Bad gateway</html>", "not valid JSON"),
        (b"[1, 2]", "returned list instead of a chat completion"),
        (b'{"choices": [{"message": "enroll"}]}', "without a message object"),
    ],
)
def test_response_body_not_chat_completion_raises(fake_openai, rule, conversation, body, expected_message):
    fake_openai.script(ScriptedResponse(200, body))

    with pytest.raises(CriteriaEvaluationError, match=expected_message):
        evaluate_criteria(rule, conversation)


def test_timeout_raises_after_retries(fake_openai, rule, conversation):
    answer = decision(True, "Matches.", ["pricing"])
    fake_openai.script(*(delayed(answer, 3.0) for _ in range(3)))

    with pytest.raises(CriteriaEvaluationError, match="timed out after 3 attempts of 0.5 s"):
        evaluate_criteria(rule, conversation)

    assert len(fake_openai.requests) == 3


def test_rate_limit_retried_after_retry_after(fake_openai, rule, conversation):
    fake_openai.script(rate_limited("1"), decision(True, "Matches.", ["pricing"]))

    verdict = evaluate_criteria(rule, conversation)

    assert verdict.enroll is True
    assert len(fake_openai.requests) == 2
    # The client's own first backoff is at most 0.5 s, so a gap of about
    # 1 s shows it waited for Retry-After instead.
    gap = fake_openai.requests[1].received_at - fake_openai.requests[0].received_at
    assert gap >= 0.9


def test_rate_limit_raises_after_retries(fake_openai, rule, conversation, settings):
    settings.OPENAI_MAX_RETRIES = 1
    fake_openai.script(rate_limited("0.05"), rate_limited("0.05"))

    with pytest.raises(CriteriaEvaluationError, match="rate limiting after 2 attempts"):
        evaluate_criteria(rule, conversation)

    assert len(fake_openai.requests) == 2


def test_server_error_retried_then_succeeds(fake_openai, rule, conversation):
    fake_openai.script(server_error(), decision(False, "No pricing discussed.", []))

    verdict = evaluate_criteria(rule, conversation)

    assert verdict.enroll is False
    assert len(fake_openai.requests) == 2


def test_server_error_raises_after_retries(fake_openai, rule, conversation):
    fake_openai.script(server_error(), server_error(), server_error())

    with pytest.raises(CriteriaEvaluationError, match="HTTP 500 after 3 attempts"):
        evaluate_criteria(rule, conversation)

    assert len(fake_openai.requests) == 3


def test_rejected_key_not_retried_or_echoed(fake_openai, rule, conversation):
    fake_openai.script(error_response(401, f"Incorrect API key provided: {FAKE_API_KEY}."))

    with pytest.raises(CriteriaEvaluationError, match="Check OPENAI_API_KEY") as raised:
        evaluate_criteria(rule, conversation)

    assert FAKE_API_KEY not in str(raised.value)
    assert "[redacted]" in str(raised.value)
    assert len(fake_openai.requests) == 1


def test_bad_request_names_model(fake_openai, rule, conversation):
    fake_openai.script(error_response(400, "response_format json_schema is not supported."))

    with pytest.raises(CriteriaEvaluationError, match="HTTP 400") as raised:
        evaluate_criteria(rule, conversation)

    assert "OPENAI_MODEL 'gpt-4o-mini'" in str(raised.value)
    assert len(fake_openai.requests) == 1


def test_connection_refused_raises(rule, conversation, settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.OPENAI_API_KEY = FAKE_API_KEY
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.OPENAI_MAX_RETRIES = 0

    with pytest.raises(CriteriaEvaluationError, match="Could not connect to http://127.0.0.1"):
        evaluate_criteria(rule, conversation)


def test_missing_key_raises_without_request(fake_openai, rule, conversation, settings):
    settings.OPENAI_API_KEY = ""

    with pytest.raises(CriteriaEvaluationError, match="OPENAI_API_KEY is not set"):
        evaluate_criteria(rule, conversation)

    assert fake_openai.requests == []


def test_budget_too_small_raises(fake_openai, rule, conversation, settings):
    settings.OPENAI_TRANSCRIPT_TOKEN_BUDGET = 10

    with pytest.raises(CriteriaEvaluationError, match="OPENAI_TRANSCRIPT_TOKEN_BUDGET"):
        evaluate_criteria(rule, conversation)

    assert fake_openai.requests == []


def test_decision_logged_without_secrets(fake_openai, rule, conversation, caplog):
    fake_openai.script(decision(True, "Matches.", ["About 800 seats across three regions."]))

    with caplog.at_level(logging.DEBUG):
        evaluate_criteria(rule, conversation)

    decided = [record for record in caplog.records if record.name == "enrollment.evaluator"]
    assert len(decided) == 1
    assert decided[0].levelno == logging.INFO
    line = decided[0].getMessage()
    assert f"rule={rule.pk} " in line
    assert "version=3 " in line
    assert "conversation=conv_001 " in line
    assert "outcome=enroll " in line
    assert "model=gpt-4o-mini-2024-07-18 " in line
    assert "prompt_tokens=812 completion_tokens=64" in line

    everything = "\n".join(record.getMessage() for record in caplog.records)
    assert FAKE_API_KEY not in everything
    assert VISITOR_EMAIL not in everything
    assert "800 seats across three regions" not in everything
    assert "enterprise plan cost" not in everything


def test_missing_usage_logged_as_none(fake_openai, rule, conversation, caplog):
    fake_openai.script(decision(False, "No pricing discussed.", [], usage=False))

    with caplog.at_level(logging.INFO, logger="enrollment.evaluator"):
        evaluate_criteria(rule, conversation)

    assert "prompt_tokens=None completion_tokens=None" in caplog.records[-1].getMessage()


def test_non_json_error_body_raises(fake_openai, rule, conversation, settings):
    settings.OPENAI_MAX_RETRIES = 0
    fake_openai.script(json_response(503, {"detail": "overloaded"}))

    with pytest.raises(CriteriaEvaluationError, match="HTTP 503 after 1 attempts"):
        evaluate_criteria(rule, conversation)
