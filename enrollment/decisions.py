"""Decisions on custom-criteria rules: reused per conversation and rule version.

A decision is made once for a conversation and a version of the rule's
criteria, stored with the model, reason and evidence, and reused for every
later write. A failed evaluation is never read as "don't enroll": it raises
`CriteriaEvaluationError` so the write is retried.
"""

import logging
from dataclasses import dataclass

from django.conf import settings

from agents.models import Conversation
from enrollment.models import EnrollmentDecision, EnrollmentRule

logger = logging.getLogger(__name__)

NOT_EVALUATED_REASON = (
    "Not evaluated: no OPENAI_API_KEY is configured. Set it and run backfill_marketo to evaluate this rule."
)


class CriteriaEvaluationError(Exception):
    """The LLM could not give a usable decision (timeout, refusal, malformed output)."""


@dataclass
class CriteriaOutcome:
    decision: EnrollmentDecision

    @property
    def enroll(self) -> bool:
        return self.decision.outcome == EnrollmentDecision.Outcome.ENROLL

    @property
    def settles_record(self) -> bool:
        """True when the enrollment write ends here without a Marketo call."""
        return not self.enroll

    @property
    def record_reason(self) -> str:
        if self.decision.outcome == EnrollmentDecision.Outcome.NOT_EVALUATED:
            return NOT_EVALUATED_REASON
        return f"Custom criteria not met: {self.decision.reason}"


def resolve_custom_criteria(rule: EnrollmentRule, conversation: Conversation | None) -> CriteriaOutcome:
    """Return the stored decision for this rule version and conversation, evaluating it if needed."""
    if conversation is None:
        raise CriteriaEvaluationError("Custom criteria need a conversation to judge.")

    existing = EnrollmentDecision.objects.filter(
        rule=rule, rule_version=rule.version, conversation=conversation
    ).first()
    if existing is not None and existing.outcome in (
        EnrollmentDecision.Outcome.ENROLL,
        EnrollmentDecision.Outcome.DO_NOT_ENROLL,
    ):
        return CriteriaOutcome(existing)

    if not settings.OPENAI_API_KEY:
        decision, _ = EnrollmentDecision.objects.update_or_create(
            rule=rule,
            rule_version=rule.version,
            conversation=conversation,
            defaults={"outcome": EnrollmentDecision.Outcome.NOT_EVALUATED, "reason": NOT_EVALUATED_REASON},
        )
        return CriteriaOutcome(decision)

    from enrollment.evaluator import evaluate_criteria

    try:
        verdict = evaluate_criteria(rule, conversation)
    except CriteriaEvaluationError as error:
        EnrollmentDecision.objects.update_or_create(
            rule=rule,
            rule_version=rule.version,
            conversation=conversation,
            defaults={"outcome": EnrollmentDecision.Outcome.ERROR, "error": str(error)[:2000]},
        )
        logger.warning(
            "enrollment.criteria.error rule=%s version=%s conversation=%s error=%s",
            rule.pk, rule.version, conversation.external_id, error,
        )
        raise

    decision, _ = EnrollmentDecision.objects.update_or_create(
        rule=rule,
        rule_version=rule.version,
        conversation=conversation,
        defaults={
            "outcome": EnrollmentDecision.Outcome.ENROLL if verdict.enroll else EnrollmentDecision.Outcome.DO_NOT_ENROLL,
            "reason": verdict.reason,
            "evidence": verdict.evidence,
            "model": verdict.model,
            "error": "",
        },
    )
    logger.info(
        "enrollment.criteria.decided rule=%s version=%s conversation=%s enroll=%s model=%s",
        rule.pk, rule.version, conversation.external_id, verdict.enroll, verdict.model,
    )
    return CriteriaOutcome(decision)
