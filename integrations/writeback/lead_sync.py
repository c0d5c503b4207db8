"""Lead stage: one Sync Leads call (createOrUpdate by email) per batch of up to 300 visitors.

Several pending records of one visitor become one input row, because
Marketo documents that two upserts of the same email sent close together
can create duplicate leads. Field updates follow two rules:
- Overwrite: a value from an older conversation never replaces one this
  product wrote from a newer conversation of the same visitor.
- Fill if empty: the field is written when Marketo has no value, or still
  has the exact value this product wrote there from a later conversation
  (so an earlier conversation processed late can still set the first touch).
  Current values are read with one Get Leads call per batch.
"""

import logging
from datetime import datetime

from agents.models import FieldMapping, Visitor
from agents.sources import VISITOR_LEAD_FIELDS, source_origin, source_value
from integrations.models import WritebackRecord
from integrations.writeback import metadata
from integrations.writeback.context import FlushContext, pack_by_size
from integrations.writeback.outcomes import mark_failed, mark_succeeded, save_succeeded, schedule_retry
from integrations.writeback.row_updates import update_column
from integrations.writeback.values import fit_value

logger = logging.getLogger(__name__)

# Per-record Sync Leads codes that point at this product's configuration
# rather than the record (an unknown field): every record of the batch would
# fail the same way, so the connection pauses with one visible error.
CONFIGURATION_CODES = {"1006"}


class LeadConfigurationError(Exception):
    """Every record of a lead batch failed for one configuration reason."""


def _origin_time(record: WritebackRecord) -> datetime:
    if record.conversation_id:
        return record.conversation.started_at
    return record.event.occurred_at


def _planned_values(record: WritebackRecord) -> list[tuple[str, object, str, datetime]]:
    """Return (marketo field, value, mode, origin time) for everything this record writes."""
    writeback = record.agent.writeback
    if not writeback.lead_sync:
        return []

    planned = []
    if record.conversation_id:
        conversation = record.conversation
        for key, marketo_field in VISITOR_LEAD_FIELDS.items():
            if key == "email":
                continue
            value = conversation.visitor_fields.get(key)
            if value:
                planned.append((marketo_field, value, FieldMapping.Mode.OVERWRITE, conversation.started_at))
        for mapping in record.agent.field_mappings.all():
            value = source_value(mapping.source, conversation)
            if value is None:
                continue
            origin = source_origin(mapping.source, conversation).started_at
            planned.append((mapping.marketo_field, value, mapping.mode, origin))
    else:
        attendee = record.event.meeting_snapshot.get("attendee") or {}
        for key in ("first_name", "last_name", "company"):
            if attendee.get(key):
                planned.append(
                    (VISITOR_LEAD_FIELDS[key], attendee[key], FieldMapping.Mode.FILL_IF_EMPTY, record.event.occurred_at)
                )
    return planned


def _fill_if_empty_allows(field_name, origin, current_values, writes) -> bool:
    current = current_values.get(field_name)
    if current in (None, ""):
        return True
    written = writes.get(field_name)
    if written is None:
        return False
    # The field still contains what this product wrote from a later
    # conversation, so an earlier conversation may replace it.
    return str(current) == str(written["value"]) and datetime.fromisoformat(written["started_at"]) > origin


def build_rows(ctx: FlushContext, by_email: dict[str, list[WritebackRecord]]) -> dict[str, tuple[dict, dict]]:
    """Return {email: (input row, {field: write record})} for one Sync Leads call."""
    lead_fields = metadata.lead_fields(ctx.connection, ctx.client)
    visitors = {
        visitor.email: visitor
        for visitor in Visitor.objects.filter(organization=ctx.connection.organization, email__in=list(by_email))
    }

    planned_by_email = {}
    fill_fields = set()
    for email, records in by_email.items():
        planned = []
        for record in sorted(records, key=_origin_time):
            planned.extend(_planned_values(record))
        planned_by_email[email] = planned
        fill_fields.update(field for field, _, mode, _ in planned if mode == FieldMapping.Mode.FILL_IF_EMPTY)

    current_by_email = {}
    if fill_fields:
        # One read per batch serves every fill-if-empty mapping in it.
        fields = sorted({"email", *fill_fields})
        for lead in ctx.client.get_leads("email", list(by_email), fields):
            current_by_email.setdefault(str(lead.get("email", "")).lower(), lead)

    rows = {}
    for email, planned in planned_by_email.items():
        visitor = visitors.get(email)
        writes = dict(visitor.lead_field_writes) if visitor else {}
        current = current_by_email.get(email, {})
        row, new_writes, origins = {"email": email}, {}, {}
        for field_name, value, mode, origin in planned:
            spec = lead_fields.get(field_name)
            if spec is None or not spec.get("updateable", True):
                # Configuration is validated against describe; a field that
                # disappeared since is left out rather than failing the lead.
                logger.warning(
                    "writeback.lead.field_missing connection=%s field=%s", ctx.connection.pk, field_name
                )
                continue
            if mode == FieldMapping.Mode.OVERWRITE:
                previous = writes.get(field_name)
                if previous and datetime.fromisoformat(previous["started_at"]) > origin:
                    continue
            elif not _fill_if_empty_allows(field_name, origin, current, writes):
                continue
            elif field_name in origins and origins[field_name] <= origin:
                continue  # an earlier conversation in this batch already fills it

            fitted = fit_value(value, spec.get("dataType", "string"), max_chars=spec.get("length") or None)
            row[field_name] = fitted
            origins[field_name] = origin
            new_writes[field_name] = {"value": fitted, "started_at": origin.isoformat()}
        rows[email] = (row, new_writes)
    return rows


def run_lead_batch(ctx: FlushContext, records: list[WritebackRecord]):
    """Upsert the leads of these records and record each outcome."""
    by_email: dict[str, list[WritebackRecord]] = {}
    for record in records:
        by_email.setdefault(record.email, []).append(record)

    rows = build_rows(ctx, by_email)
    for chunk in pack_by_size(list(rows.items()), lambda item: item[1][0]):
        _send_chunk(ctx, chunk, by_email)


def _send_chunk(ctx: FlushContext, chunk, by_email):
    emails = [email for email, _ in chunk]
    results = ctx.client.sync_leads([row for _, (row, _) in chunk])
    ctx.report.batches += 1

    skipped_codes = {
        result.reasons[0].code if result.reasons else "" for result in results if not result.ok
    }
    # A batch of one counts too: 1006 names a field, never the record's data,
    # so dead-lettering a lone record would hide a cause every later lead shares.
    if results and all(not result.ok for result in results) and skipped_codes <= CONFIGURATION_CODES:
        message = results[0].reasons[0].message if results[0].reasons else "unknown field"
        # The cached describe still lists the field Marketo no longer has.
        # Dropping the cache makes the next flush read it again and leave the field out.
        metadata.forget(ctx.connection, "lead_fields")
        raise LeadConfigurationError(
            f"Marketo rejected every lead in a batch: {message}. Check the agent's field updates "
            "against the lead fields in Marketo, then resume the connection."
        )

    writes_by_email = {email: writes for email, (_, writes) in chunk}
    written, succeeded = [], []
    for email, result in zip(emails, results):
        records = by_email[email]
        if result.ok:
            written.append((email, result.id, writes_by_email[email]))
            for record in records:
                mark_succeeded(record, lead_id=result.id, save=False)
                succeeded.append(record)
                ctx.report.count("written", "lead")
            continue

        reason = result.reasons[0] if result.reasons else None
        code = reason.code if reason else ""
        text = reason.message if reason else "skipped without a reason"
        for record in records:
            if code in ("1007",):
                mark_failed(
                    record,
                    f"Several Marketo leads have the email {email}; merge them in Marketo, then retry. ({code} {text})",
                    code=code,
                )
                ctx.report.count("failed", "lead")
            elif code in ("1001", "1003", "1006", "1008", "1009", "1010", "1021"):
                mark_failed(record, f"Marketo skipped the lead: {text} ({code}).", code=code)
                ctx.report.count("failed", "lead")
            else:
                schedule_retry(record, f"Marketo skipped the lead: {text} ({code}).", code=code)
                ctx.report.count("retried", "lead")

    # The visitors first: a record is marked written only once its lead id is stored.
    _record_leads(ctx, written)
    save_succeeded(succeeded)


def _record_leads(ctx: FlushContext, written: list[tuple[str, int, dict]]):
    """Store each visitor's lead id and the field values written, with one read and two updates per batch."""
    if not written:
        return
    organization = ctx.connection.organization
    emails = [email for email, _, _ in written]
    visitors = {visitor.email: visitor for visitor in Visitor.objects.filter(organization=organization, email__in=emails)}

    # A meeting attendee may have no visitor row yet.
    missing = [Visitor(organization=organization, email=email) for email in emails if email not in visitors]
    if missing:
        Visitor.objects.bulk_create(missing, ignore_conflicts=True)
        created = Visitor.objects.filter(organization=organization, email__in=[visitor.email for visitor in missing])
        visitors.update({visitor.email: visitor for visitor in created})

    lead_ids, field_writes = {}, {}
    for email, lead_id, new_writes in written:
        visitor = visitors[email]
        lead_ids[visitor.pk] = lead_id
        field_writes[visitor.pk] = {**visitor.lead_field_writes, **new_writes}
    update_column(Visitor, "marketo_lead_id", lead_ids)
    update_column(Visitor, "lead_field_writes", field_writes)
