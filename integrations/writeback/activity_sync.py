"""Activity stage: Add Custom Activities, exactly once.

Marketo neither deduplicates custom activities nor lets anyone delete them,
so this module enforces exactly-once itself:

1. Before the call, the batch is committed as in flight (WritebackBatch with
   its lead ids and send time) and its records point at it.
2. A clear answer (per-record `added` or `skipped`) is recorded and the batch
   is closed in one transaction.
3. An unclear outcome (timeout, HTTP 5xx, 604, a dropped connection, or a
   worker killed before step 2 committed) is never answered by resending.
   The batch stays in flight until it is reconciled: the activities of its
   leads and types since the send time are read back from Marketo and
   matched by Conversation ID (Meeting ID with status and start for
   meetings). Matched records are marked written; only the rest go back to
   the queue. A failed read-back leaves the batch in flight for the next
   flush. A killed worker's batch is reconciled once
   WRITEBACK_IN_FLIGHT_TIMEOUT_SECONDS have passed since it was sent.

A record is therefore resent only after Marketo has been shown not to hold it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Visitor
from integrations.marketo.exceptions import MarketoOutcomeUnknownError
from integrations.models import WritebackBatch, WritebackRecord
from integrations.writeback.activity_payloads import activity_matches, conversation_activity, meeting_activity
from integrations.writeback.context import FlushContext, pack_by_size
from integrations.writeback.lease import renew_lease
from integrations.writeback.outcomes import mark_failed, mark_succeeded, save_succeeded, schedule_retry

logger = logging.getLogger(__name__)

# Marketo pages lead activities by their activityDate, which is the
# conversation's end or the meeting event's time, not the time of the write.
# Reconciliation reads from a little before the earliest activityDate in the
# batch, so time zones and clock skew can't hide an activity.
RECONCILE_MARGIN = timedelta(minutes=10)


def build_activity(ctx: FlushContext, record: WritebackRecord) -> dict:
    if record.meeting_id:
        return meeting_activity(record, ctx.connection, record.marketo_lead_id)
    return conversation_activity(record, ctx.connection, record.marketo_lead_id, written_at=ctx.now)


def run_activity_batch(ctx: FlushContext, records: list[WritebackRecord]):
    """Send these records' activities in as few calls as the size limits allow."""
    items = [(record, build_activity(ctx, record)) for record in records]
    for chunk in pack_by_size(items, lambda item: item[1]):
        _send_chunk(ctx, chunk)


class LeaseLost(Exception):
    """This worker's lease lapsed, so another worker may be reconciling its batches."""


def _send_chunk(ctx: FlushContext, chunk):
    records = [record for record, _ in chunk]

    # The lease is renewed right before the batch is marked in flight, so the
    # mark and the call start inside a fresh lease. A worker that stalled past
    # its lease (slow lead stage, long rate-limit waits) stops here instead of
    # sending a batch another worker may already be reconciling.
    if not renew_lease(ctx.connection.pk, ctx.owner):
        raise LeaseLost(f"The flush lease of connection {ctx.connection.pk} lapsed before an activity batch.")
    batch = _mark_in_flight(ctx, records, [activity for _, activity in chunk])

    try:
        results = ctx.client.add_custom_activities([activity for _, activity in chunk])
    except MarketoOutcomeUnknownError as error:
        logger.warning(
            "writeback.activity.outcome_unknown connection=%s batch=%s code=%s",
            ctx.connection.pk, batch.pk, error.code,
        )
        # The call has ended, so the batch may be reconciled at once, also by
        # a later flush when the read-back below fails. It stays in flight
        # until a read-back settles it: nothing else may resend its records.
        batch.finished_at = timezone.now()
        batch.outcome = f"outcome unknown ({error.code or 'no response'}); not yet reconciled"
        batch.save(update_fields=["finished_at", "outcome"])
        reconcile_batch(ctx, batch)
        return
    except Exception:
        # The call was not executed (a 6xx, a rate limit, a quota stop):
        # nothing reached Marketo, so the records simply go back to the queue.
        _close_batch(batch, "not sent")
        raise

    ctx.report.batches += 1
    with transaction.atomic():
        succeeded = []
        for (record, _), result in zip(chunk, results):
            _record_result(ctx, record, result, succeeded)
        save_succeeded(succeeded)
        _close_batch(batch, "done")


def _mark_in_flight(ctx: FlushContext, records, activities) -> WritebackBatch:
    with transaction.atomic():
        batch = WritebackBatch.objects.create(
            connection=ctx.connection,
            action=WritebackRecord.Action.ACTIVITY,
            record_count=len(records),
            lead_ids=sorted({activity["leadId"] for activity in activities}),
            activity_type_ids=sorted({activity["activityTypeId"] for activity in activities}),
            sent_at=timezone.now(),
        )
        WritebackRecord.objects.filter(pk__in=[record.pk for record in records]).update(
            status=WritebackRecord.Status.IN_FLIGHT, batch=batch
        )
    return batch


def _close_batch(batch: WritebackBatch, outcome: str, status=WritebackBatch.Status.DONE):
    batch.status = status
    batch.outcome = outcome
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "outcome", "finished_at"])
    if outcome == "not sent":
        WritebackRecord.objects.filter(batch=batch, status=WritebackRecord.Status.IN_FLIGHT).update(
            status=WritebackRecord.Status.PENDING, batch=None
        )


def _record_result(ctx: FlushContext, record: WritebackRecord, result, succeeded: list):
    """Record one activity's outcome; a written one joins `succeeded`, which the caller saves in one statement."""
    if result.ok:
        mark_succeeded(record, guid=result.marketo_guid or (str(result.id) if result.id else ""), save=False)
        succeeded.append(record)
        ctx.report.count("written", "activity")
        return

    reason = result.reasons[0] if result.reasons else None
    code = reason.code if reason else ""
    text = reason.message if reason else "skipped without a reason"

    if code == "1004" and record.last_error_code != "1004":
        # The lead may have been merged or deleted since it was synced: find
        # it again by email and retry this record once.
        _relink_lead(ctx, record)
        schedule_retry(record, f"Marketo no longer knows lead {record.marketo_lead_id}; looking it up again.", code=code, count_attempt=False)
        record.last_error_code = "1004"
        record.save(update_fields=["last_error_code"])
        ctx.report.count("retried", "activity")
        return

    mark_failed(record, f"Marketo skipped the activity: {text} ({code}).", code=code)
    ctx.report.count("failed", "activity")


def _relink_lead(ctx: FlushContext, record: WritebackRecord):
    leads = ctx.client.get_leads("email", [record.email], ["id", "email"])
    new_id = leads[0]["id"] if leads else None
    Visitor.objects.filter(organization=ctx.connection.organization, email=record.email).update(
        marketo_lead_id=new_id
    )
    logger.info(
        "writeback.activity.lead_relinked record=%s old_lead=%s new_lead=%s",
        record.pk, record.marketo_lead_id, new_id,
    )
    record.marketo_lead_id = new_id


def reconcile_batch(ctx: FlushContext, batch: WritebackBatch):
    """Settle a batch whose outcome is unknown by reading its activities back from Marketo."""
    records = list(
        WritebackRecord.objects.filter(batch=batch, status=WritebackRecord.Status.IN_FLIGHT).select_related(
            "conversation", "meeting", "event"
        )
    )
    logger.info(
        "writeback.activity.reconcile connection=%s batch=%s records=%s", ctx.connection.pk, batch.pk, len(records)
    )
    if records:
        since = min(_activity_date(record) for record in records) - RECONCILE_MARGIN
        found = ctx.client.get_lead_activities(batch.activity_type_ids, batch.lead_ids, since)
        by_lead: dict[int, list[dict]] = {}
        for activity in found:
            by_lead.setdefault(int(activity.get("leadId", 0)), []).append(activity)

        with transaction.atomic():
            for record in records:
                match = next(
                    (activity for activity in by_lead.get(record.marketo_lead_id or 0, []) if activity_matches(record, activity)),
                    None,
                )
                if match is not None:
                    mark_succeeded(record, guid=str(match.get("marketoGUID") or match.get("id") or ""), note="Confirmed by reading it back from Marketo.")
                    ctx.report.count("written", "activity")
                else:
                    schedule_retry(record, "The outcome of the last send was unknown and Marketo doesn't hold the activity; sending it again.")
                    ctx.report.count("retried", "activity")

    _close_batch(batch, f"reconciled {len(records)} records", status=WritebackBatch.Status.RECONCILED)


def _activity_date(record: WritebackRecord):
    if record.meeting_id:
        return record.event.occurred_at
    return record.conversation.ended_at


def abandoned_filter() -> Q:
    """Return the condition under which a batch still in flight may be reconciled.

    Either its call is known to have ended (`finished_at` is set when the
    outcome came back unknown), or it was sent WRITEBACK_IN_FLIGHT_TIMEOUT_SECONDS
    ago. The lease alone doesn't prove the sender is gone: one call may wait
    out rate limits longer than a lease.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.WRITEBACK_IN_FLIGHT_TIMEOUT_SECONDS)
    return Q(finished_at__isnull=False) | Q(sent_at__lt=cutoff)


def reconcile_abandoned_batches(ctx: FlushContext):
    """Reconcile activity batches left in flight by a worker that stopped before recording the outcome."""
    abandoned = WritebackBatch.objects.filter(
        connection=ctx.connection,
        action=WritebackRecord.Action.ACTIVITY,
        status=WritebackBatch.Status.IN_FLIGHT,
    ).filter(abandoned_filter())
    for batch in abandoned:
        reconcile_batch(ctx, batch)
