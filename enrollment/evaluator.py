"""Judge a custom-criteria enrollment rule on one conversation with an OpenAI-compatible model.

Timeouts, connection errors, HTTP 408, 409, 429 and 5xx are retried by the
`openai` client itself: OPENAI_MAX_RETRIES times, with exponential backoff
starting at 0.5 s, or after the server's Retry-After when that is at most
two minutes (openai-python 3.63). Any failure left after that, and any
response that is not a valid decision, raises CriteriaEvaluationError.
"""

import json
import logging
from dataclasses import dataclass

import openai
from django.conf import settings
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice

from agents.models import Conversation
from enrollment.decisions import CriteriaEvaluationError
from enrollment.models import EnrollmentRule
from enrollment.prompts import DECISION_SCHEMA, RESPONSE_FORMAT, build_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """The model's decision on one rule version and one conversation."""

    enroll: bool
    reason: str
    evidence: list[str]
    # The model name the response reports, or OPENAI_MODEL when it reports none.
    model: str


def evaluate_criteria(rule: EnrollmentRule, conversation: Conversation) -> Verdict:
    """Ask the configured model whether `conversation` meets `rule`'s criteria.

    Raises CriteriaEvaluationError when no usable decision comes back.
    """
    if not settings.OPENAI_API_KEY:
        raise CriteriaEvaluationError("OPENAI_API_KEY is not set. Set it to evaluate custom criteria.")

    try:
        messages = build_messages(rule, conversation, settings.OPENAI_TRANSCRIPT_TOKEN_BUDGET)
    except ValueError as error:
        raise CriteriaEvaluationError(str(error)) from error

    completion = _request_completion(messages)
    verdict = _parse_completion(completion)

    usage = completion.usage if isinstance(completion.usage, CompletionUsage) else None
    logger.info(
        "enrollment.criteria.evaluated rule=%s version=%s conversation=%s outcome=%s model=%s "
        "prompt_tokens=%s completion_tokens=%s",
        rule.pk,
        rule.version,
        conversation.external_id,
        "enroll" if verdict.enroll else "do_not_enroll",
        verdict.model,
        usage.prompt_tokens if usage else None,
        usage.completion_tokens if usage else None,
    )
    return verdict


def _request_completion(messages: list[dict]):
    try:
        with openai.OpenAI(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL or None,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=settings.OPENAI_MAX_RETRIES,
        ) as client:
            # No temperature is sent because reasoning models reject it, and a
            # decision is stored and reused rather than asked again.
            return client.chat.completions.create(
                model=settings.OPENAI_MODEL,
                messages=messages,
                response_format=RESPONSE_FORMAT,
            )
    except openai.OpenAIError as error:
        raise CriteriaEvaluationError(_describe_api_error(error)) from error
    except json.JSONDecodeError as error:
        # The openai client decodes a body sent as application/json without catching decode errors.
        raise CriteriaEvaluationError(
            f"The server at {settings.OPENAI_BASE_URL or 'the default OpenAI endpoint'} returned a "
            f"response body that is not valid JSON ({error.msg}). Check OPENAI_BASE_URL."
        ) from error


def _describe_api_error(error: openai.OpenAIError) -> str:
    attempts = settings.OPENAI_MAX_RETRIES + 1
    endpoint = settings.OPENAI_BASE_URL or "the default OpenAI endpoint"

    if isinstance(error, openai.APITimeoutError):
        message = (
            f"The OpenAI request timed out after {attempts} attempts of {settings.OPENAI_TIMEOUT_SECONDS} s each. "
            "Raise OPENAI_TIMEOUT_SECONDS or OPENAI_MAX_RETRIES if the model is slow."
        )
    elif isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        message = f"Could not connect to {endpoint} after {attempts} attempts ({cause}). Check OPENAI_BASE_URL."
    elif isinstance(error, openai.AuthenticationError):
        message = f"The OpenAI API rejected the API key (HTTP 401: {error.message}). Check OPENAI_API_KEY."
    elif isinstance(error, openai.RateLimitError):
        message = (
            f"The OpenAI API is still rate limiting after {attempts} attempts (HTTP 429: {error.message}). "
            "The write is retried later."
        )
    elif isinstance(error, openai.APIStatusError) and error.status_code >= 500:
        message = (
            f"The OpenAI API failed with HTTP {error.status_code} after {attempts} attempts: {error.message}"
        )
    elif isinstance(error, openai.APIStatusError):
        message = (
            f"The OpenAI API rejected the request with HTTP {error.status_code}: {error.message}. "
            f"Check that OPENAI_MODEL {settings.OPENAI_MODEL!r} exists at {endpoint} "
            "and supports json_schema response formats."
        )
    else:
        message = f"The OpenAI request failed: {type(error).__name__}: {error}"

    # A compatible server may echo the key back in its error message.
    return message.replace(settings.OPENAI_API_KEY, "[redacted]")


def _parse_completion(completion) -> Verdict:
    # The openai client does not validate response bodies, so a compatible
    # server's malformed response arrives as whatever JSON it sent.
    if not isinstance(completion, ChatCompletion):
        raise CriteriaEvaluationError(
            f"The server returned {type(completion).__name__} instead of a chat completion object. "
            "Check OPENAI_BASE_URL."
        )

    model = settings.OPENAI_MODEL
    if isinstance(completion.model, str) and completion.model:
        # EnrollmentDecision.model is limited to 100 characters.
        model = completion.model[:100]
    if not completion.choices or not isinstance(completion.choices, list):
        raise CriteriaEvaluationError(f"The model {model!r} returned no choices.")

    choice = completion.choices[0]
    if not isinstance(choice, Choice) or not isinstance(choice.message, ChatCompletionMessage):
        raise CriteriaEvaluationError(f"The model {model!r} returned a choice without a message object.")

    if choice.message.refusal:
        raise CriteriaEvaluationError(
            f"The model {model!r} returned a refusal instead of a decision: {str(choice.message.refusal)[:300]}"
        )
    if choice.finish_reason == "length":
        raise CriteriaEvaluationError(
            f"The model {model!r} stopped at its output token limit before completing the JSON output."
        )
    if choice.finish_reason == "content_filter":
        raise CriteriaEvaluationError(f"The model {model!r} output was blocked by a content filter.")

    content = choice.message.content
    if not isinstance(content, (str, type(None))):
        raise CriteriaEvaluationError(
            f"The model {model!r} returned content of type {type(content).__name__}, expected a JSON string."
        )
    if not content:
        raise CriteriaEvaluationError(f"The model {model!r} returned empty content.")

    # The output is left out of these messages: it may quote the conversation,
    # and the messages are stored and logged.
    try:
        answer = json.loads(content)
    except json.JSONDecodeError as error:
        raise CriteriaEvaluationError(
            f"The model {model!r} returned invalid JSON ({error.msg} at character {error.pos} "
            f"of {len(content)})."
        ) from error

    _check_answer(answer, model)
    return Verdict(
        enroll=answer["enroll"],
        reason=answer["reason"].strip(),
        evidence=[item.strip() for item in answer["evidence"] if item.strip()],
        model=model,
    )


def _check_answer(answer, model: str) -> None:
    """Raise CriteriaEvaluationError unless `answer` matches DECISION_SCHEMA and has a reason."""
    if not isinstance(answer, dict):
        raise CriteriaEvaluationError(
            f"The model {model!r} returned a JSON {type(answer).__name__}, expected an object "
            "with enroll, reason and evidence."
        )

    expected = set(DECISION_SCHEMA["required"])
    missing = sorted(expected - answer.keys())
    unexpected = sorted(answer.keys() - expected)
    if missing:
        raise CriteriaEvaluationError(f"The model {model!r} output is missing {', '.join(missing)}.")
    if unexpected:
        raise CriteriaEvaluationError(f"The model {model!r} output has unexpected keys {', '.join(unexpected)}.")

    if not isinstance(answer["enroll"], bool):
        raise CriteriaEvaluationError(
            f"The model {model!r} output has enroll of type {type(answer['enroll']).__name__}, expected boolean."
        )
    if not isinstance(answer["reason"], str):
        raise CriteriaEvaluationError(
            f"The model {model!r} output has reason of type {type(answer['reason']).__name__}, expected string."
        )
    # A decision without a reason cannot be audited, so it is not accepted.
    if not answer["reason"].strip():
        raise CriteriaEvaluationError(f"The model {model!r} output has an empty reason.")

    evidence = answer["evidence"]
    if not isinstance(evidence, list) or not all(isinstance(item, str) for item in evidence):
        raise CriteriaEvaluationError(
            f"The model {model!r} output has evidence that is not a list of strings."
        )
