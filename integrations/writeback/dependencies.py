"""Linking activity, enrollment and association records to their Marketo lead.

Every such write needs a lead id. The id comes from the visitor's lead
sync, and until it exists the record waits. When the lead sync failed, the
dependent record fails with that reason. When no lead sync was ever queued
(a meeting whose attendee email became known later, a backfill), one is
queued by email alone.
"""

from agents.models import Conversation, Visitor
from integrations.models import WritebackRecord
from integrations.writeback.outcomes import mark_failed, mark_skipped
from integrations.writeback.row_updates import update_column

Action = WritebackRecord.Action
Status = WritebackRecord.Status

DEPENDENT_ACTIONS = (Action.ACTIVITY, Action.ENROLLMENT, Action.ASSOCIATE)
LINK_BATCH_SIZE = 2000


def attach_lead_ids(connection, now) -> int:
    """Fill in lead ids of pending dependent records; return how many failed for lack of a lead."""
    organization = connection.organization
    waiting = list(
        WritebackRecord.objects.filter(
            organization=organization,
            action__in=DEPENDENT_ACTIONS,
            status=Status.PENDING,
            marketo_lead_id__isnull=True,
        )
        .order_by("priority", "created_at")[:LINK_BATCH_SIZE]
    )
    if not waiting:
        return 0

    # Records without an email (a meeting whose conversation arrived later)
    # take the conversation visitor's. One query serves all of them, because
    # loading every waiting record's conversation costs more than the rest.
    without_email = [record for record in waiting if not record.email and record.conversation_id]
    visitor_emails = dict(
        Conversation.objects.filter(
            pk__in={record.conversation_id for record in without_email}, visitor__isnull=False
        ).values_list("pk", "visitor__email")
    )
    for record in without_email:
        if record.conversation_id in visitor_emails:
            record.email = visitor_emails[record.conversation_id]
            record.save(update_fields=["email"])

    emails = {record.email for record in waiting if record.email}
    lead_ids = dict(
        Visitor.objects.filter(organization=organization, email__in=emails, marketo_lead_id__isnull=False)
        .values_list("email", "marketo_lead_id")
    )
    lead_states = _lead_record_states(organization, emails)

    failed = 0
    linked = []
    for record in waiting:
        if not record.email:
            if record.not_before is None or record.not_before <= now:
                # The meeting's wait for its conversation is over and nothing
                # names a lead: no attendee email and no conversation visitor.
                if record.conversation_id:
                    reason = (
                        "No lead to write to: the meeting has no attendee email and its booking "
                        "conversation has no usable visitor email."
                    )
                else:
                    reason = (
                        "No lead to write to: the meeting has no attendee email and its booking "
                        "conversation did not arrive within the wait window."
                    )
                mark_skipped(record, reason)
                failed += 1
            continue
        lead_id = lead_ids.get(record.email)
        if lead_id:
            record.marketo_lead_id = lead_id
            linked.append(record)
            continue

        states = lead_states.get(record.email, {})
        if states.get(Status.PENDING) or states.get(Status.IN_FLIGHT):
            continue
        if states.get(Status.SUCCEEDED):
            # Synced, but the visitor's id was cleared (a merged or deleted
            # lead): queue a fresh lookup by email.
            _queue_lead_by_email(record)
            continue
        if states.get(Status.FAILED) or states.get(Status.SKIPPED):
            mark_failed(record, f"The Marketo lead for {record.email} could not be synced: {states['reason']}")
            failed += 1
            continue
        _queue_lead_by_email(record)

    # One statement for the whole batch instead of one per record.
    update_column(WritebackRecord, "marketo_lead_id", {record.pk: record.marketo_lead_id for record in linked})
    return failed


def _lead_record_states(organization, emails) -> dict[str, dict]:
    states: dict[str, dict] = {}
    rows = WritebackRecord.objects.filter(
        organization=organization, action=Action.LEAD, email__in=emails
    ).values_list("email", "status", "last_error")
    for email, status, last_error in rows:
        entry = states.setdefault(email, {"reason": ""})
        entry[status] = True
        if status in (Status.FAILED, Status.SKIPPED) and last_error:
            entry["reason"] = last_error
    return states


def _queue_lead_by_email(record: WritebackRecord):
    suffix = WritebackRecord.objects.filter(
        organization_id=record.organization_id, dedupe_key__startswith=f"lead:email:{record.email}:"
    ).count()
    WritebackRecord.objects.get_or_create(
        organization_id=record.organization_id,
        dedupe_key=f"lead:email:{record.email}:{suffix}",
        defaults={
            "agent_id": record.agent_id,
            "event_id": record.event_id,
            "conversation_id": record.conversation_id,
            "action": Action.LEAD,
            "email": record.email,
            "priority": record.priority,
        },
    )
