"""Re-queueing stored events whose writes never succeeded.

Covers dead-lettered records, custom-criteria enrollments skipped because no
LLM was configured, and events never planned because the agent's writeback
was off or no connection existed. `force` also re-syncs lead fields and
program statuses already written; an activity already
in Marketo is never sent again, because its record stays succeeded.
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from agents.models import InboundEvent
from enrollment.decisions import NOT_EVALUATED_REASON
from integrations.models import WritebackRecord
from integrations.writeback.outcomes import SWITCHED_OFF_CODE
from integrations.writeback.planning import plan_event_writes

logger = logging.getLogger(__name__)

Status = WritebackRecord.Status
Action = WritebackRecord.Action


@dataclass
class BackfillReport:
    events: int = 0
    requeued: int = 0
    planned: int = 0
    forced: int = 0


def backfill(organization, *, agent_id=None, since=None, dry_run=False, force=False, progress=None) -> BackfillReport:
    events = InboundEvent.objects.filter(organization=organization).select_related("agent__writeback", "conversation", "meeting")
    if agent_id:
        events = events.filter(agent__external_id=agent_id)
    if since:
        events = events.filter(occurred_at__gte=since)
    events = events.order_by("occurred_at", "id")

    report = BackfillReport()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    # Ids first, then one event per transaction: on SQLite an open read
    # cursor across many write transactions made workers see "database is locked".
    event_ids = list(events.values_list("pk", flat=True))
    total = len(event_ids)
    for position, event_id in enumerate(event_ids, start=1):
        event = InboundEvent.objects.select_related("agent__writeback", "conversation", "meeting").get(pk=event_id)
        report.events += 1
        with transaction.atomic():
            _backfill_event(event, report, dry_run=dry_run, force=force, stamp=stamp)
            if dry_run:
                transaction.set_rollback(True)
        if progress:
            progress(position, total)

    logger.info(
        "writeback.backfill.done org=%s events=%s requeued=%s planned=%s forced=%s dry_run=%s",
        organization.slug, report.events, report.requeued, report.planned, report.forced, dry_run,
    )
    return report


def _backfill_event(event, report: BackfillReport, *, dry_run: bool, force: bool, stamp: str):
    retryable = (
        WritebackRecord.objects.filter(event=event, status=Status.FAILED)
        | WritebackRecord.objects.filter(event=event, status=Status.SKIPPED, last_error=NOT_EVALUATED_REASON)
        # Writes skipped because a switch was off. A switch still off skips them again.
        | WritebackRecord.objects.filter(event=event, status=Status.SKIPPED, last_error_code=SWITCHED_OFF_CODE)
    )
    for record in retryable:
        report.requeued += 1
        record.status = Status.PENDING
        record.attempts = 0
        record.not_before = None
        record.priority = WritebackRecord.Priority.BACKFILL
        record.last_error = "Re-queued by backfill."
        record.save()

    planned = plan_event_writes(event, priority=WritebackRecord.Priority.BACKFILL)
    report.planned += len(planned)

    if force:
        already = WritebackRecord.objects.filter(
            event=event, status=Status.SUCCEEDED, action__in=[Action.LEAD, Action.ENROLLMENT]
        )
        for record in already:
            report.forced += 1
            WritebackRecord.objects.create(
                organization_id=record.organization_id,
                agent_id=record.agent_id,
                event=event,
                conversation_id=record.conversation_id,
                meeting_id=record.meeting_id,
                action=record.action,
                dedupe_key=f"{record.dedupe_key}:force:{stamp}",
                priority=WritebackRecord.Priority.BACKFILL,
                email=record.email,
                enrollment_rule_id=record.enrollment_rule_id,
                program_id=record.program_id,
                program_status=record.program_status,
            )
