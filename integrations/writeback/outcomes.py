"""Recording what happened to writeback records, with the retry and dead-letter policy."""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrations.models import WritebackRecord
from integrations.writeback.row_updates import update_column

logger = logging.getLogger(__name__)

Status = WritebackRecord.Status

# last_error_code of a write skipped because its agent's switch was turned off.
SWITCHED_OFF_CODE = "switched_off"


def mark_succeeded(record: WritebackRecord, *, lead_id=None, guid: str = "", note: str = "", save: bool = True):
    """Record a write Marketo accepted; with `save=False` the caller saves it with `save_succeeded`."""
    record.status = Status.SUCCEEDED
    record.completed_at = timezone.now()
    if lead_id:
        record.marketo_lead_id = lead_id
    if guid:
        record.marketo_guid = guid
    record.last_error = note
    record.last_error_code = ""
    record.batch = None
    if save:
        _save_outcome(record)


def _save_outcome(record: WritebackRecord):
    """Save a record's outcome, unless the record was deleted while it was being sent.

    Deleting an agent, an event or an organization deletes its records, also
    in the middle of a flush. A plain save() would insert such a record
    again, which fails on its deleted foreign keys, so this is an UPDATE
    that may match no row.
    """
    record.updated_at = timezone.now()
    values = {
        field.attname: getattr(record, field.attname)
        for field in WritebackRecord._meta.concrete_fields
        if not field.primary_key
    }
    if not WritebackRecord.objects.filter(pk=record.pk).update(**values):
        logger.info(
            "writeback.record.deleted record=%s action=%s status=%s reason=deleted during the flush",
            record.pk, record.action, record.status,
        )


def save_succeeded(records: list[WritebackRecord]):
    """Save records marked with `mark_succeeded(..., save=False)` with a few statements for the whole batch.

    The fields every record shares go in one UPDATE per note, and the lead
    ids and GUIDs, which differ per record, in one UPDATE each.
    """
    if not records:
        return
    now = timezone.now()
    by_note: dict[str, list[int]] = {}
    for record in records:
        record.completed_at = record.updated_at = now
        by_note.setdefault(record.last_error, []).append(record.pk)
    for note, ids in by_note.items():
        WritebackRecord.objects.filter(pk__in=ids).update(
            status=Status.SUCCEEDED, completed_at=now, last_error=note, last_error_code="", batch=None, updated_at=now
        )

    # Dependent records had their lead id stored when it was attached, so
    # only lead records carry a new one.
    lead_ids = {
        record.pk: record.marketo_lead_id
        for record in records
        if record.action == WritebackRecord.Action.LEAD and record.marketo_lead_id
    }
    update_column(WritebackRecord, "marketo_lead_id", lead_ids)
    update_column(WritebackRecord, "marketo_guid", {record.pk: record.marketo_guid for record in records if record.marketo_guid})


def mark_skipped(record: WritebackRecord, reason: str, *, code: str = ""):
    """Record a write that was deliberately not made, with the reason staff will see."""
    record.status = Status.SKIPPED
    record.completed_at = timezone.now()
    record.last_error = reason
    record.last_error_code = code
    record.batch = None
    _save_outcome(record)
    logger.info(
        "writeback.record.skipped record=%s action=%s code=%s reason=%s",
        record.pk, record.action, code, reason,
    )


def mark_failed(record: WritebackRecord, reason: str, *, code: str = ""):
    """Dead-letter a record: visible in admin, retryable by staff and `backfill_marketo`."""
    record.status = Status.FAILED
    record.completed_at = timezone.now()
    record.last_error = reason
    record.last_error_code = code
    record.batch = None
    _save_outcome(record)
    logger.warning(
        "writeback.record.failed record=%s action=%s code=%s reason=%s",
        record.pk, record.action, code, reason,
    )


def schedule_retry(record: WritebackRecord, reason: str, *, code: str = "", count_attempt: bool = True):
    """Put a record back in the queue with backoff, or dead-letter it after the last attempt."""
    if count_attempt:
        record.attempts += 1
    if record.attempts >= settings.WRITEBACK_MAX_ATTEMPTS:
        mark_failed(record, f"{reason} (gave up after {record.attempts} attempts)", code=code)
        return

    # Exponential backoff with full jitter, so records that failed together
    # don't all retry in the same second.
    ceiling = min(settings.MARKETO_BACKOFF_MAX_SECONDS * 10, settings.MARKETO_BACKOFF_BASE_SECONDS * 2 ** record.attempts)
    delay = random.uniform(ceiling / 2, ceiling)
    record.status = Status.PENDING
    record.not_before = timezone.now() + timedelta(seconds=delay)
    record.last_error = reason
    record.last_error_code = code
    record.batch = None
    _save_outcome(record)
    logger.info(
        "writeback.record.retry record=%s action=%s attempt=%s delay=%.1fs code=%s",
        record.pk, record.action, record.attempts, delay, code,
    )


def return_to_queue(records, reason: str = ""):
    """Put records back as pending without counting an attempt (a pause, not a failure)."""
    ids = [record.pk for record in records]
    WritebackRecord.objects.filter(pk__in=ids).update(
        status=Status.PENDING, batch=None, last_error=reason, updated_at=timezone.now()
    )
