"""Turning a stored event into the Marketo writes its agent's configuration asks for.

Each write is one WritebackRecord with a dedupe key that names the write
itself (the conversation's activity, a rule's enrollment of a meeting), so
planning the same event twice, by a replay or a backfill, queues nothing new.
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Conversation, InboundEvent, Meeting
from enrollment.models import EnrollmentRule
from integrations.models import MarketoConnection, WritebackRecord

logger = logging.getLogger(__name__)

Action = WritebackRecord.Action


def plan_event_writes(event: InboundEvent, *, priority: int = WritebackRecord.Priority.LIVE) -> list[WritebackRecord]:
    """Create the pending writeback records for one event; return the new ones.

    Nothing is planned when the organization has no Marketo connection or the
    agent's Marketo writeback is off: `backfill_marketo` plans those later.
    """
    connection = MarketoConnection.objects.filter(organization_id=event.organization_id).first()
    if connection is None or connection.status == MarketoConnection.Status.DISCONNECTED:
        return []

    writeback = getattr(event.agent, "writeback", None)
    if writeback is None or not writeback.marketo_enabled:
        return []
    if not (writeback.lead_sync or writeback.activity_sync or writeback.program_enrollment):
        return []

    if event.conversation_id:
        planned = _plan_conversation(event, event.conversation, connection, writeback)
    else:
        planned = _plan_meeting(event, event.meeting, writeback)

    created = []
    for record in planned:
        record.priority = priority
        if _insert_once(record):
            created.append(record)
    return created


def _plan_conversation(event, conversation: Conversation, connection, writeback) -> list[WritebackRecord]:
    if not conversation.visitor_id:
        # Without a usable email there is no lead to write to; the
        # conversation stays stored and visible with the reason.
        logger.info(
            "writeback.plan.no_lead org=%s conversation=%s reason=%s",
            event.organization_id, conversation.external_id, conversation.email_problem,
        )
        return []

    email = conversation.visitor.email
    common = {
        "organization_id": event.organization_id,
        "agent_id": event.agent_id,
        "event": event,
        "conversation": conversation,
        "email": email,
    }

    # Activities and enrollment need a lead even when Lead Sync is off; the
    # lead record then upserts by email alone.
    records = [WritebackRecord(action=Action.LEAD, dedupe_key=f"lead:conversation:{conversation.external_id}", **common)]

    if writeback.activity_sync:
        records.append(
            WritebackRecord(
                action=Action.ACTIVITY, dedupe_key=f"activity:conversation:{conversation.external_id}", **common
            )
        )

    if writeback.program_enrollment:
        rules = EnrollmentRule.objects.filter(
            agent_id=event.agent_id,
            trigger__in=[EnrollmentRule.Trigger.CONVERSATION_COMPLETED, EnrollmentRule.Trigger.CUSTOM_CRITERIA],
        )
        for rule in rules:
            records.append(_enrollment_record(rule, f"conversation:{conversation.external_id}", common))

    cookie = conversation.munchkin_cookie
    if cookie and _cookie_matches_munchkin(cookie, connection.munchkin_id):
        digest = hashlib.sha256(cookie.encode("utf-8")).hexdigest()[:24]
        records.append(
            WritebackRecord(action=Action.ASSOCIATE, dedupe_key=f"associate:{email}:{digest}", **common)
        )
    return records


def _plan_meeting(event, meeting: Meeting, writeback) -> list[WritebackRecord]:
    snapshot = event.meeting_snapshot
    email = snapshot.get("attendee_email") or ""
    conversation = meeting.conversation
    if not email and conversation is not None and conversation.visitor_id:
        email = conversation.visitor.email

    waiting_for_conversation = bool(snapshot.get("conversation_id")) and conversation is None
    if not email and not waiting_for_conversation:
        logger.info(
            "writeback.plan.no_lead org=%s meeting=%s reason=no attendee or conversation email",
            event.organization_id, meeting.external_id,
        )
        return []

    # A meeting whose booking conversation hasn't arrived waits for it, so
    # its activity can carry that conversation's attribution.
    not_before = None
    if waiting_for_conversation:
        not_before = timezone.now() + timedelta(seconds=settings.WRITEBACK_MEETING_WAIT_SECONDS)

    common = {
        "organization_id": event.organization_id,
        "agent_id": event.agent_id,
        "event": event,
        "meeting": meeting,
        "conversation": conversation,
        "email": email,
    }
    records = []
    if email:
        records.append(WritebackRecord(action=Action.LEAD, dedupe_key=f"lead:event:{event.event_id}", **common))

    if writeback.activity_sync:
        records.append(
            WritebackRecord(
                action=Action.ACTIVITY,
                dedupe_key=f"activity:event:{event.event_id}",
                not_before=not_before,
                **common,
            )
        )

    if writeback.program_enrollment and event.type == InboundEvent.Type.MEETING_BOOKED:
        rules = EnrollmentRule.objects.filter(agent_id=event.agent_id, trigger=EnrollmentRule.Trigger.MEETING_BOOKED)
        for rule in rules:
            record = _enrollment_record(rule, f"meeting:{meeting.external_id}", common)
            record.not_before = not_before
            records.append(record)
    return records


def _enrollment_record(rule: EnrollmentRule, subject_key: str, common: dict) -> WritebackRecord:
    return WritebackRecord(
        action=Action.ENROLLMENT,
        dedupe_key=f"enrollment:rule:{rule.pk}:{subject_key}",
        enrollment_rule=rule,
        program_id=rule.program_id,
        program_status=rule.status_name,
        **common,
    )


def _insert_once(record: WritebackRecord) -> bool:
    exists = WritebackRecord.objects.filter(
        organization_id=record.organization_id, dedupe_key=record.dedupe_key
    ).exists()
    if exists:
        return False
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError:
        return False
    return True


def _cookie_matches_munchkin(cookie: str, munchkin_id: str) -> bool:
    """True when a `_mkto_trk` value (`id:417-QWE-902&token:_mch-...`) belongs to this instance."""
    prefix = f"id:{munchkin_id}&token:"
    return cookie.strip().lower().startswith(prefix.lower())


def release_meeting_records(conversation: Conversation):
    """Let meeting writes that waited for this conversation go now."""
    WritebackRecord.objects.filter(
        organization_id=conversation.organization_id,
        meeting__conversation_external_id=conversation.external_id,
        status=WritebackRecord.Status.PENDING,
        not_before__isnull=False,
    ).update(not_before=None, conversation=conversation)
