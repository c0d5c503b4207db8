"""Recording what happened to writeback records, with the retry and dead-letter policy."""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from integrations.models import WritebackRecord

logger = logging.getLogger(__name__)

Status = WritebackRecord.Status


def mark_succeeded(record: WritebackRecord, *, lead_id=None, guid: str = "", note: str = ""):
    record.status = Status.SUCCEEDED
    record.completed_at = timezone.now()
    if lead_id:
        record.marketo_lead_id = lead_id
    if guid:
        record.marketo_guid = guid
    record.last_error = note
    record.last_error_code = ""
    record.batch = None
    record.save()


def mark_skipped(record: WritebackRecord, reason: str, *, code: str = ""):
    """Record a write that was deliberately not made, with the reason staff will see."""
    record.status = Status.SKIPPED
    record.completed_at = timezone.now()
    record.last_error = reason
    record.last_error_code = code
    record.batch = None
    record.save()
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
    record.save()
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
    record.save()
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
