"""Enrollment stage: Sync Program Member Status, forward-only.

Status order comes from the step numbers of the program's channel statuses.
A status write is skipped locally when this product has already recorded
the lead at the same or a later step. Otherwise it goes straight to
Marketo, whose own rule skips a lead already at or past the status (reason
1037), so no read of the program's members is needed per batch. Within one batch each lead
gets only its highest status, so events processed out of order can't move a
lead backwards.
"""

import logging

from django.db import transaction
from django.utils import timezone

from enrollment.decisions import CriteriaEvaluationError, resolve_custom_criteria
from enrollment.models import EnrollmentRule, ProgramMembership
from integrations.marketo.exceptions import MarketoOutcomeUnknownError, MarketoRequestError
from integrations.models import MarketoConnection, WritebackBatch, WritebackRecord
from integrations.writeback import metadata
from integrations.writeback.activity_sync import abandoned_filter
from integrations.writeback.context import MAX_BATCH_RECORDS, FlushContext
from integrations.writeback.outcomes import mark_skipped, mark_succeeded, save_succeeded, schedule_retry

logger = logging.getLogger(__name__)


class EnrollmentConfigurationError(Exception):
    """A rule's status is not one of its program's channel statuses (Marketo code 1025)."""


def run_enrollment_batch(ctx: FlushContext, records: list[WritebackRecord]):
    """Write program statuses for these records, grouped by program and status."""
    # The statuses this product recorded for the batch's leads, read once for the batch.
    memberships = {
        (membership.program_id, membership.marketo_lead_id): membership
        for membership in ProgramMembership.objects.filter(
            connection=ctx.connection, marketo_lead_id__in={record.marketo_lead_id for record in records}
        )
    }

    targets, resolved_program = [], []
    for record in records:
        planned_program_id = record.program_id
        target = _resolve_target(ctx, record, memberships)
        if target is not None:
            targets.append(target)
            if record.program_id != planned_program_id:
                resolved_program.append(record)
    # Stored before the call, because reconciling an abandoned batch reads it.
    WritebackRecord.objects.bulk_update(resolved_program, ["program_id"], batch_size=500)

    # One status per lead and program: the highest step wins, the rest are
    # recorded as skipped with the reason.
    best: dict[tuple[int, int], tuple] = {}
    for target in targets:
        record, program_id, status_name, step = target
        key = (program_id, record.marketo_lead_id)
        current = best.get(key)
        if current is None or step > current[3]:
            if current is not None:
                mark_skipped(current[0], f"Superseded by status {status_name!r} written in the same batch.")
                ctx.report.count("skipped", "enrollment")
            best[key] = target
        else:
            mark_skipped(record, f"Superseded by status {current[2]!r} written in the same batch.")
            ctx.report.count("skipped", "enrollment")

    groups: dict[tuple[int, str], list[tuple]] = {}
    for target in best.values():
        groups.setdefault((target[1], target[2]), []).append(target)

    for (program_id, status_name), group in groups.items():
        for start in range(0, len(group), MAX_BATCH_RECORDS):
            _send_group(ctx, program_id, status_name, group[start:start + MAX_BATCH_RECORDS])


def _resolve_target(ctx: FlushContext, record: WritebackRecord, memberships: dict):
    """Return (record, program id, status, step), or None when the record was settled here.

    `memberships` contains the recorded ProgramMembership rows by (program id, lead id).
    The caller stores a program id this sets on the record.
    """
    rule = record.enrollment_rule
    if rule is None:
        mark_skipped(record, "The enrollment rule was deleted before the write.")
        ctx.report.count("skipped", "enrollment")
        return None

    if rule.trigger == EnrollmentRule.Trigger.CUSTOM_CRITERIA:
        try:
            decision = resolve_custom_criteria(rule, record.conversation)
        except CriteriaEvaluationError as error:
            schedule_retry(record, f"The custom criteria could not be evaluated: {error}")
            ctx.report.count("retried", "enrollment")
            return None
        if decision.settles_record:
            mark_skipped(record, decision.record_reason)
            ctx.report.count("skipped", "enrollment")
            return None

    program = metadata.program(ctx.connection, ctx.client, record.program_id or rule.program)
    if program is None:
        program = metadata.program(ctx.connection, ctx.client, record.program_id or rule.program, refresh=True)
    if program is None:
        mark_skipped(record, f"Program {rule.program!r} no longer exists in Marketo.", code="program_missing")
        ctx.report.count("skipped", "enrollment")
        _report_missing_program(ctx, rule.program)
        return None

    statuses = metadata.program_statuses(ctx.connection, ctx.client, program)
    status_name = record.program_status or rule.status_name
    if status_name not in statuses:
        raise EnrollmentConfigurationError(
            f"Status {status_name!r} is not a status of program {program['name']!r} "
            f"(channel {program['channel']!r}: {', '.join(statuses) or 'no statuses'}). "
            "Pick one of its statuses in the agent's enrollment rules."
        )
    step = statuses[status_name]

    known = memberships.get((program["id"], record.marketo_lead_id))
    if known is not None and known.step >= step:
        mark_skipped(
            record,
            f"The lead is already at {known.status_name!r} (step {known.step}) in {program['name']!r}; "
            f"status only moves forward, so {status_name!r} (step {step}) was not written.",
            code="1037",
        )
        ctx.report.count("skipped", "enrollment")
        return None

    record.program_id = program["id"]
    return (record, program["id"], status_name, step)


def _send_group(ctx: FlushContext, program_id: int, status_name: str, group: list[tuple]):
    records = [target[0] for target in group]
    lead_ids = [record.marketo_lead_id for record in records]
    with transaction.atomic():
        batch = WritebackBatch.objects.create(
            connection=ctx.connection,
            action=WritebackRecord.Action.ENROLLMENT,
            record_count=len(records),
            lead_ids=lead_ids,
            sent_at=timezone.now(),
            outcome=f"program {program_id} status {status_name}",
        )
        WritebackRecord.objects.filter(pk__in=[record.pk for record in records]).update(
            status=WritebackRecord.Status.IN_FLIGHT, batch=batch
        )

    try:
        results = ctx.client.sync_program_member_status(program_id, status_name, lead_ids)
    except MarketoOutcomeUnknownError:
        # As for activities: the call ended, and the batch stays in flight
        # until a read-back of the members settles it.
        batch.finished_at = timezone.now()
        batch.save(update_fields=["finished_at"])
        _reconcile_group(ctx, batch, group)
        return
    except MarketoRequestError as error:
        if _program_missing(ctx, program_id, _program_label(records, program_id)):
            for record in records:
                mark_skipped(record, f"Program {program_id} no longer exists in Marketo.", code="program_missing")
                ctx.report.count("skipped", "enrollment")
            _close(batch, "program missing")
            return
        _close(batch, "not sent", requeue=True)
        raise error
    except Exception:
        _close(batch, "not sent", requeue=True)
        raise

    ctx.report.batches += 1
    codes = {result.reasons[0].code for result in results if result.reasons}
    if results and all(not result.ok for result in results) and codes == {"1025"}:
        _close(batch, "1025", requeue=True)
        raise EnrollmentConfigurationError(
            f"Marketo rejected status {status_name!r} for program {program_id} (1025): it is not a status "
            "of the program's channel. Fix the agent's enrollment rules."
        )
    if results and all(not result.ok for result in results) and codes == {"1013"} and _program_missing(
        ctx, program_id, _program_label(records, program_id)
    ):
        for record in records:
            mark_skipped(record, f"Program {program_id} no longer exists in Marketo.", code="program_missing")
            ctx.report.count("skipped", "enrollment")
        _close(batch, "program missing")
        return

    with transaction.atomic():
        succeeded = []
        for (record, _, _, step), result in zip(group, results):
            _record_result(ctx, record, program_id, status_name, step, result, succeeded)
        _remember_many(ctx, program_id, status_name, [(record.marketo_lead_id, step) for record, step in succeeded])
        save_succeeded([record for record, _ in succeeded])
        _close(batch, "done")


def _record_result(ctx, record, program_id, status_name, step, result, succeeded: list):
    """Record one status change's outcome; a written one joins `succeeded` as (record, step) for the caller to save."""
    if result.ok:
        mark_succeeded(record, save=False)
        succeeded.append((record, step))
        ctx.report.count("written", "enrollment")
        return

    reason = result.reasons[0] if result.reasons else None
    code = reason.code if reason else ""
    if code == "1037":
        mark_skipped(
            record,
            f"Marketo reports the lead already at or past {status_name!r}; status only moves forward.",
            code=code,
        )
        ctx.report.count("skipped", "enrollment")
        return

    text = reason.message if reason else "skipped without a reason"
    schedule_retry(record, f"Marketo skipped the status change: {text} ({code}).", code=code)
    ctx.report.count("retried", "enrollment")


def _remember(ctx, program_id, lead_id, status_name, step):
    membership, created = ProgramMembership.objects.get_or_create(
        connection=ctx.connection,
        program_id=program_id,
        marketo_lead_id=lead_id,
        defaults={"status_name": status_name, "step": step},
    )
    if not created and step > membership.step:
        membership.status_name = status_name
        membership.step = step
        membership.save(update_fields=["status_name", "step", "updated_at"])


def _program_label(records, program_id: int) -> str:
    rule = records[0].enrollment_rule if records else None
    return f"{rule.program} (id {program_id})" if rule is not None else f"id {program_id}"


def _remember_many(ctx, program_id: int, status_name: str, leads: list[tuple[int, int]]):
    """Remember that these (lead id, step) pairs reached `status_name`, in at most three statements."""
    if not leads:
        return
    existing = {
        membership.marketo_lead_id: membership
        for membership in ProgramMembership.objects.filter(
            connection=ctx.connection, program_id=program_id, marketo_lead_id__in=[lead_id for lead_id, _ in leads]
        )
    }

    new, raised = [], []
    for lead_id, step in leads:
        membership = existing.get(lead_id)
        if membership is None:
            new.append(
                ProgramMembership(
                    connection=ctx.connection, program_id=program_id, marketo_lead_id=lead_id,
                    status_name=status_name, step=step,
                )
            )
        elif step > membership.step:
            membership.status_name = status_name
            membership.step = step
            membership.updated_at = timezone.now()
            raised.append(membership)

    # One flush at a time writes a connection's memberships (the lease), so
    # a conflict here means the row exists already and is left as it is.
    ProgramMembership.objects.bulk_create(new, ignore_conflicts=True)
    ProgramMembership.objects.bulk_update(raised, ["status_name", "step", "updated_at"], batch_size=500)


def _program_missing(ctx: FlushContext, program_id: int, label: str) -> bool:
    """Check with Get Program by Id whether a program was deleted (Marketo leaves this response open)."""
    found = ctx.client.get_program(program_id)
    if found:
        return False
    for key in list(ctx.connection.metadata_cache):
        if key.startswith("program:"):
            metadata.forget(ctx.connection, key)
    _report_missing_program(ctx, label)
    return True


def _report_missing_program(ctx: FlushContext, program_ref):
    """Show one error on the connection, so staff see the cause once rather than per skipped record."""
    message = (
        f"Program {program_ref} no longer exists in Marketo, so enrollment rules that use it are skipped. "
        "Pick another program in those agents' enrollment rules."
    )
    if ctx.connection.last_error != message:
        MarketoConnection.objects.filter(pk=ctx.connection.pk).update(last_error=message)
        ctx.connection.last_error = message
        logger.warning("writeback.enrollment.program_missing connection=%s program=%s", ctx.connection.pk, program_ref)


def _reconcile_group(ctx: FlushContext, batch: WritebackBatch, group: list[tuple]):
    """After an unknown outcome, read the members back and settle what Marketo already holds."""
    program_id = group[0][1]
    status_name = group[0][2]
    records = [target[0] for target in group]
    members = ctx.client.get_program_members(program_id, [record.marketo_lead_id for record in records])
    statuses = metadata.program_statuses(ctx.connection, ctx.client, {"channel": _channel_of(ctx, program_id)})
    at = {int(member["leadId"]): member.get("statusName") for member in members}

    with transaction.atomic():
        for record, _, _, step in group:
            current = at.get(record.marketo_lead_id)
            if current is not None and statuses.get(current, -1) >= step:
                _remember(ctx, program_id, record.marketo_lead_id, current, statuses.get(current, step))
                mark_succeeded(record, note="Confirmed by reading the program's members back from Marketo.")
                ctx.report.count("written", "enrollment")
            else:
                schedule_retry(record, f"The outcome of setting {status_name!r} was unknown; sending it again.")
                ctx.report.count("retried", "enrollment")
        _close(batch, "reconciled", status=WritebackBatch.Status.RECONCILED)


def _channel_of(ctx: FlushContext, program_id: int) -> str:
    program = metadata.program(ctx.connection, ctx.client, program_id)
    return program["channel"] if program else ""


def _close(batch: WritebackBatch, outcome: str, *, requeue: bool = False, status=WritebackBatch.Status.DONE):
    batch.status = status
    batch.outcome = outcome
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "outcome", "finished_at"])
    if requeue:
        WritebackRecord.objects.filter(batch=batch, status=WritebackRecord.Status.IN_FLIGHT).update(
            status=WritebackRecord.Status.PENDING, batch=None
        )


def reconcile_abandoned_batches(ctx: FlushContext):
    """Settle enrollment batches left in flight by a stopped worker."""
    # Same age rule as activity batches: only a batch whose call has surely ended is settled.
    abandoned = WritebackBatch.objects.filter(
        connection=ctx.connection,
        action=WritebackRecord.Action.ENROLLMENT,
        status=WritebackBatch.Status.IN_FLIGHT,
    ).filter(abandoned_filter())
    for batch in abandoned:
        records = list(WritebackRecord.objects.filter(batch=batch, status=WritebackRecord.Status.IN_FLIGHT))
        if not records:
            _close(batch, "empty")
            continue
        program_id = records[0].program_id
        statuses = metadata.program_statuses(ctx.connection, ctx.client, {"channel": _channel_of(ctx, program_id)})
        group = [(record, program_id, record.program_status, statuses.get(record.program_status, 0)) for record in records]
        _reconcile_group(ctx, batch, group)
