"""Flushing one connection: pending records out to Marketo in batches.

Stages run in dependency order (leads, then activities, program statuses
and Munchkin associations, which need lead ids). A stage sends when a batch
is full (300 records) or its oldest record has waited the batch window, so
a busy connection spends about one call per 300 writes of each kind.

Failures are sorted by what they mean for the connection rather than the
record. A daily quota stop or Docket's used-up budget pauses the connection
until the quota day ends. Rejected credentials, a missing permission or a
configuration Marketo refuses for every record pause it until someone fixes
the cause. Paused work stays pending, never failed. Transient errors send
the batch's records back with backoff, and only a record's own problem
dead-letters it.
"""

import logging
import time
import uuid
from datetime import timedelta

from django.db.models import Min, Q
from django.utils import timezone

from agents.models import Agent, AgentWriteback, Conversation
from enrollment.models import EnrollmentRule
from integrations.marketo import quota
from integrations.marketo.client import MarketoClient
from integrations.marketo.exceptions import (
    MarketoBudgetExhaustedError,
    MarketoCredentialsError,
    MarketoPermissionError,
    MarketoQuotaExceededError,
    MarketoRateLimitError,
    MarketoRequestError,
    MarketoTokenError,
    MarketoTransientError,
)
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback import activity_sync, membership_sync
from integrations.writeback.association import run_association
from integrations.writeback.context import MAX_BATCH_RECORDS, FlushContext, FlushReport
from integrations.writeback.dependencies import attach_lead_ids
from integrations.writeback.lead_sync import LeadConfigurationError, run_lead_batch
from integrations.writeback.lease import acquire_lease, release_lease, renew_lease
from integrations.writeback.outcomes import SWITCHED_OFF_CODE, schedule_retry
from integrations.writeback.pacing import batch_window

logger = logging.getLogger(__name__)

Action = WritebackRecord.Action
Status = WritebackRecord.Status

STAGE_ORDER = (Action.LEAD, Action.ACTIVITY, Action.ENROLLMENT, Action.ASSOCIATE)

# Relations each stage reads for every record, joined into its batch query.
# Agents are attached afterwards from one read (see _attach_agents).
STAGE_RELATIONS = {
    Action.LEAD: ("conversation__visitor__first_conversation", "event"),
    Action.ACTIVITY: ("conversation__visitor__first_conversation", "meeting__conversation", "event"),
    Action.ENROLLMENT: ("conversation__visitor", "enrollment_rule"),
    Action.ASSOCIATE: ("conversation",),
}
_CONVERSATION_TEXT = ("transcript", "summary", "post_call_analysis")
# Large columns a stage doesn't read for every record. Decoding them for a
# whole batch costs more than the rest of the stage. A deferred column still
# loads on first access, one query per record, so a stage defers only what
# none of its payloads read. Lead field updates may read the summary and the
# post-call analysis, but never the transcript. Custom criteria rules get
# their text in one read per batch (_load_criteria_text).
STAGE_DEFERRED_FIELDS = {
    Action.LEAD: (
        "event__payload",
        "conversation__transcript",
        *(f"conversation__visitor__first_conversation__{name}" for name in _CONVERSATION_TEXT),
    ),
    Action.ACTIVITY: (
        "event__payload",
        *(f"conversation__visitor__first_conversation__{name}" for name in _CONVERSATION_TEXT),
        *(f"meeting__conversation__{name}" for name in _CONVERSATION_TEXT),
    ),
    Action.ENROLLMENT: tuple(f"conversation__{name}" for name in _CONVERSATION_TEXT),
    Action.ASSOCIATE: tuple(f"conversation__{name}" for name in _CONVERSATION_TEXT),
}
# Far-future pause for a connection that needs a person to fix something;
# a passing connection check lifts it.
ATTENTION_PAUSE = timedelta(days=3650)


class ConnectionPaused(Exception):
    """The connection can't send now; its records stay pending."""


def flush_connection(
    connection_id: int, *, flush_all: bool = False, wait_until=None, run_until=None, sleep=time.sleep
) -> FlushReport:
    """Send what is due for one connection; return counts of what happened.

    `flush_all` ignores the batch window (used by `drain_writeback`).
    `wait_until` lets the flush wait for records that become due before that
    time (a batch window, a short backoff) instead of returning at once.
    `run_until` is a time budget: the flush stops starting new batches after
    it and sets `stopped_early`, so a task ends before the queue's timeout
    kills it mid-batch.
    """
    report = FlushReport()
    owner = uuid.uuid4().hex
    if not acquire_lease(connection_id, owner):
        logger.info("writeback.flush.busy connection=%s reason=another worker holds the lease", connection_id)
        return report

    try:
        connection = MarketoConnection.objects.select_related("organization").get(pk=connection_id)
        _check_runnable(connection)
        ctx = FlushContext(
            connection=connection,
            client=MarketoClient.for_connection(connection),
            now=timezone.now(),
            report=report,
            owner=owner,
        )
        logger.info("writeback.flush.start connection=%s org=%s", connection.pk, connection.organization.slug)
        _guard(ctx, lambda: _reconcile_abandoned(ctx))
        _run_until_idle(ctx, flush_all=flush_all, wait_until=wait_until, run_until=run_until, sleep=sleep)
        # Live work is done; report why backfill records are still pending.
        report.paused_reason = ctx.backfill_paused
    except ConnectionPaused as pause:
        report.paused_reason = str(pause)
    except MarketoConnection.DoesNotExist:
        logger.warning("writeback.flush.connection_missing connection=%s", connection_id)
    except activity_sync.LeaseLost:
        # Another worker has the lease now and sends what is left.
        logger.warning("writeback.flush.lease_lost connection=%s", connection_id)
    finally:
        release_lease(connection_id, owner)

    logger.info(
        "writeback.flush.done connection=%s written=%s skipped=%s failed=%s retried=%s batches=%s paused=%s",
        connection_id, report.written, report.skipped, report.failed, report.retried, report.batches,
        bool(report.paused_reason),
    )
    return report


def _check_runnable(connection: MarketoConnection):
    now = timezone.now()
    if connection.paused_until and connection.paused_until > now:
        raise ConnectionPaused(connection.pause_reason or f"Paused until {connection.paused_until:%Y-%m-%d %H:%M} UTC.")
    if connection.status != MarketoConnection.Status.CONNECTED:
        raise ConnectionPaused(f"The Marketo connection is {connection.get_status_display().lower()}.")
    if not (connection.conversation_activity_type_id and connection.meeting_activity_type_id):
        raise ConnectionPaused("The Marketo connection setup is incomplete; run setup again.")


def _run_until_idle(ctx: FlushContext, *, flush_all: bool, wait_until, run_until=None, sleep):
    while True:
        ctx.now = timezone.now()
        if run_until is not None and ctx.now >= run_until:
            ctx.report.stopped_early = True
            logger.info("writeback.flush.time_budget_reached connection=%s", ctx.connection.pk)
            return
        progressed = _skip_switched_off(ctx)
        progressed = bool(_guard(ctx, lambda: attach_lead_ids(ctx.connection, ctx.now))) or progressed
        for action in STAGE_ORDER:
            if _run_stage(ctx, action, flush_all=flush_all):
                progressed = True

        if not renew_lease(ctx.connection.pk, ctx.owner):
            logger.warning("writeback.flush.lease_lost connection=%s", ctx.connection.pk)
            return
        if progressed:
            continue

        next_due = _next_due(ctx, flush_all=flush_all)
        if next_due is None or wait_until is None or next_due > wait_until:
            return
        sleep(max(0.05, min((next_due - timezone.now()).total_seconds(), 5.0)))


def _skip_switched_off(ctx: FlushContext) -> bool:
    """Skip pending writes whose agent's switch was turned off after they were planned; return whether any were.

    A customer who turns a switch off expects Docket to stop writing, also
    what was queued before. Each skipped record states the reason, and
    `backfill_marketo` queues them again once the switch is back on.
    """
    # Agents are few and records many: read the agents with a switch off
    # first, so a pass where every switch is on costs one small query.
    off_agents = list(
        AgentWriteback.objects.filter(agent__organization=ctx.connection.organization)
        .filter(Q(marketo_enabled=False) | Q(activity_sync=False) | Q(program_enrollment=False))
        .values_list("agent_id", flat=True)
    )
    if not off_agents:
        return False
    pending = WritebackRecord.objects.filter(
        organization=ctx.connection.organization, status=Status.PENDING, agent_id__in=off_agents
    )
    switched_off = (
        (Q(agent__writeback__marketo_enabled=False), "Marketo writeback"),
        (Q(action=Action.ACTIVITY, agent__writeback__activity_sync=False), "Activity Sync"),
        (Q(action=Action.ENROLLMENT, agent__writeback__program_enrollment=False), "Program enrollment"),
    )
    skipped = 0
    for condition, switch in switched_off:
        found = list(pending.filter(condition).values_list("pk", "action"))
        if not found:
            continue
        WritebackRecord.objects.filter(pk__in=[pk for pk, _ in found], status=Status.PENDING).update(
            status=Status.SKIPPED,
            completed_at=timezone.now(),
            updated_at=timezone.now(),
            batch=None,
            last_error=f"Not sent: {switch} was turned off for this agent before the write was sent. "
            "Turn it on again and run backfill_marketo to send it.",
            last_error_code=SWITCHED_OFF_CODE,
        )
        logger.info(
            "writeback.records.switched_off connection=%s switch=%s skipped=%s", ctx.connection.pk, switch, len(found)
        )
        for _, action in found:
            ctx.report.count("skipped", action)
        skipped += len(found)
    return bool(skipped)


def _due_records(ctx: FlushContext, action: str, *, flush_all: bool) -> list[WritebackRecord]:
    queryset = WritebackRecord.objects.filter(
        organization=ctx.connection.organization, action=action, status=Status.PENDING
    ).exclude(not_before__gt=ctx.now)
    if action != Action.LEAD:
        queryset = queryset.filter(marketo_lead_id__isnull=False)

    records = list(
        queryset.select_related(*STAGE_RELATIONS[action])
        .defer(*STAGE_DEFERRED_FIELDS[action])
        .order_by("priority", "created_at", "id")[:MAX_BATCH_RECORDS]
    )
    if not records:
        return records
    if not flush_all and len(records) < MAX_BATCH_RECORDS:
        window = batch_window(ctx.connection)
        oldest = min(record.created_at for record in records)
        if oldest > ctx.now - window:
            return []

    records = _attach_agents(records)
    if action == Action.ENROLLMENT:
        _load_criteria_text(records)
    return records


def _load_criteria_text(records: list[WritebackRecord]):
    """Read the conversation text that custom criteria rules send to the LLM, in one query for the batch."""
    conversations = [
        record.conversation
        for record in records
        if record.conversation_id
        and record.enrollment_rule is not None
        and record.enrollment_rule.trigger == EnrollmentRule.Trigger.CUSTOM_CRITERIA
    ]
    if not conversations:
        return
    texts = {
        row["id"]: row
        for row in Conversation.objects.filter(pk__in={conversation.pk for conversation in conversations}).values(
            "id", *_CONVERSATION_TEXT
        )
    }
    for conversation in conversations:
        for name in _CONVERSATION_TEXT:
            setattr(conversation, name, texts[conversation.pk][name])


def _attach_agents(records: list[WritebackRecord]) -> list[WritebackRecord]:
    """Attach to every record and conversation of a batch its agent, read once with what payloads use.

    A batch has hundreds of records and a few agents. Joining the agent into
    every row built an Agent, an AgentWriteback and a prefetch per record,
    and in profiles of the benchmark that took most of a stage's time.
    """
    agent_ids = {record.agent_id for record in records}
    for record in records:
        if record.conversation_id:
            agent_ids.add(record.conversation.agent_id)
    agents = Agent.objects.select_related("writeback").prefetch_related("field_mappings", "analysis_fields").in_bulk(agent_ids)
    record_agent = WritebackRecord._meta.get_field("agent")
    conversation_agent = Conversation._meta.get_field("agent")

    attached = []
    for record in records:
        conversation = record.conversation if record.conversation_id else None
        if record.agent_id not in agents or (conversation is not None and conversation.agent_id not in agents):
            # The agent was deleted after the records were read, and the
            # deletion takes this record with it.
            logger.info(
                "writeback.record.agent_deleted record=%s action=%s agent=%s", record.pk, record.action, record.agent_id
            )
            continue
        record_agent.set_cached_value(record, agents[record.agent_id])
        if conversation is not None:
            conversation_agent.set_cached_value(conversation, agents[conversation.agent_id])
        attached.append(record)
    return attached


def _next_due(ctx: FlushContext, *, flush_all: bool):
    """Return when the next pending record becomes sendable, or None when none will by itself.

    Only records that a stage could send count: lead records, and dependent
    records whose lead id is known. Others wait for a lead record, whose own
    time counts, so a flush never spins on a record it can't send.
    """
    pending = WritebackRecord.objects.filter(organization=ctx.connection.organization, status=Status.PENDING)
    if ctx.backfill_paused:
        pending = pending.filter(priority=WritebackRecord.Priority.LIVE)
    backoff = pending.filter(not_before__gt=timezone.now()).aggregate(first=Min("not_before"))["first"]
    sendable = pending.exclude(not_before__gt=timezone.now()).filter(
        Q(action=Action.LEAD) | Q(marketo_lead_id__isnull=False)
    )
    oldest = sendable.aggregate(oldest=Min("created_at"))["oldest"]

    candidates = [moment for moment in (backoff,) if moment is not None]
    if oldest is not None:
        window = timedelta(0) if flush_all else batch_window(ctx.connection)
        candidates.append(oldest + window)
    return max(min(candidates), timezone.now()) if candidates else None


def _run_stage(ctx: FlushContext, action: str, *, flush_all: bool) -> bool:
    records = _within_budget(ctx, _due_records(ctx, action, flush_all=flush_all))
    if not records:
        return False

    def send():
        if action == Action.LEAD:
            run_lead_batch(ctx, records)
        elif action == Action.ACTIVITY:
            activity_sync.run_activity_batch(ctx, records)
        elif action == Action.ENROLLMENT:
            membership_sync.run_enrollment_batch(ctx, records)
        else:
            for record in records:
                run_association(ctx, record)

    try:
        _guard(ctx, send)
    except MarketoTransientError as error:
        _retry_unsettled(ctx, records, f"Marketo was temporarily unavailable: {error}", error.code or "")
    except MarketoRateLimitError as error:
        # 606 or 615 outlasted the client's retries: the instance is busy, not
        # the records wrong, so they wait without using up an attempt.
        _retry_unsettled(
            ctx, records, f"Marketo's rate limit was still exceeded: {error}", error.code or "", count_attempt=False
        )
    return True


def _within_budget(ctx: FlushContext, records: list[WritebackRecord]) -> list[WritebackRecord]:
    """Return the records today's budget lets this stage send.

    When live work has used Docket's whole daily budget the connection pauses
    until the quota day ends. When only backfill's share (80%) is used up,
    backfill records stay pending and live records still go out.
    """
    if not records:
        return records
    _guard(ctx, lambda: quota.check_budget(ctx.connection, priority=WritebackRecord.Priority.LIVE))
    if all(record.priority == WritebackRecord.Priority.LIVE for record in records):
        return records

    try:
        quota.check_budget(ctx.connection, priority=WritebackRecord.Priority.BACKFILL)
    except MarketoBudgetExhaustedError as error:
        if not ctx.backfill_paused:
            logger.warning("writeback.backfill.paused connection=%s reason=%s", ctx.connection.pk, error)
        ctx.backfill_paused = str(error)
        return [record for record in records if record.priority == WritebackRecord.Priority.LIVE]
    return records


def _retry_unsettled(ctx: FlushContext, records, reason: str, code: str, *, count_attempt: bool = True):
    # A record in flight in a batch was sent, and its outcome is unknown.
    # Only a read-back of its batch may settle it, because a resend could duplicate it.
    unsettled = WritebackRecord.objects.filter(pk__in=[record.pk for record in records]).filter(
        Q(status=Status.PENDING) | Q(status=Status.IN_FLIGHT, batch__isnull=True)
    )
    for record in unsettled:
        schedule_retry(record, reason, code=str(code), count_attempt=count_attempt)
        ctx.report.count("retried", record.action)


def _guard(ctx: FlushContext, step):
    """Run a step, turning connection-wide failures into a pause."""
    connection = ctx.connection
    try:
        return step()
    except MarketoQuotaExceededError:
        resume_at = quota.next_quota_reset(timezone.now())
        _pause(connection, resume_at, f"Marketo's daily API quota is used up; work resumes at {resume_at:%Y-%m-%d %H:%M} UTC when the quota day ends.")
    except MarketoBudgetExhaustedError as error:
        _pause(connection, error.resume_at, str(error))
    except (MarketoCredentialsError, MarketoTokenError) as error:
        _needs_attention(connection, f"Marketo rejected the credentials: {error} Update the Client ID and Client Secret in Settings → Integrations → Marketo.")
    except MarketoPermissionError as error:
        _needs_attention(connection, str(error))
    except (LeadConfigurationError, membership_sync.EnrollmentConfigurationError) as error:
        _needs_attention(connection, str(error))
    except MarketoRequestError as error:
        _needs_attention(connection, f"Marketo refused a request ({error.code}): {error}")


def _pause(connection: MarketoConnection, until, reason: str):
    MarketoConnection.objects.filter(pk=connection.pk).update(paused_until=until, pause_reason=reason)
    _return_in_flight(connection)
    logger.warning("writeback.connection.paused connection=%s until=%s reason=%s", connection.pk, until, reason)
    raise ConnectionPaused(reason)


def _needs_attention(connection: MarketoConnection, reason: str):
    MarketoConnection.objects.filter(pk=connection.pk).update(
        status=MarketoConnection.Status.NEEDS_ATTENTION,
        status_message=reason,
        last_error=reason,
        paused_until=timezone.now() + ATTENTION_PAUSE,
        pause_reason=reason,
    )
    _return_in_flight(connection)
    logger.warning("writeback.connection.needs_attention connection=%s reason=%s", connection.pk, reason)
    raise ConnectionPaused(reason)


def _return_in_flight(connection: MarketoConnection):
    # Only batches that were never sent are open at this point: sent ones
    # are either recorded or left for reconciliation by their own stage.
    WritebackRecord.objects.filter(
        organization=connection.organization, status=Status.IN_FLIGHT, batch__isnull=True
    ).update(status=Status.PENDING)


def _reconcile_abandoned(ctx: FlushContext):
    activity_sync.reconcile_abandoned_batches(ctx)
    membership_sync.reconcile_abandoned_batches(ctx)
