"""Planning of the Marketo writes that a stored event's agent configuration requires.

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

CONVERSATION_TRIGGERS = (EnrollmentRule.Trigger.CONVERSATION_COMPLETED, EnrollmentRule.Trigger.CUSTOM_CRITERIA)
MEETING_TRIGGERS = (EnrollmentRule.Trigger.MEETING_BOOKED,)


class PlanningLookups:
    """The connection and enrollment rules, read once for all events of one ingest request.

    Planning reads the same rows for every event of a request; keeping them
    here saves two queries per event. Build a new one per request, so
    configuration changes apply from the next request on.
    """

    def __init__(self):
        self._connections: dict[int, MarketoConnection | None] = {}
        self._rules: dict[tuple[int, tuple], list[EnrollmentRule]] = {}

    def connection(self, organization_id: int) -> MarketoConnection | None:
        if organization_id not in self._connections:
            self._connections[organization_id] = MarketoConnection.objects.filter(
                organization_id=organization_id
            ).first()
        return self._connections[organization_id]

    def rules(self, agent_id: int, triggers: tuple) -> list[EnrollmentRule]:
        key = (agent_id, triggers)
        if key not in self._rules:
            self._rules[key] = list(EnrollmentRule.objects.filter(agent_id=agent_id, trigger__in=triggers))
        return self._rules[key]


def plan_event_writes(
    event: InboundEvent, *, priority: int = WritebackRecord.Priority.LIVE, lookups: PlanningLookups | None = None
) -> list[WritebackRecord]:
    """Create the pending writeback records for one event; return the new ones.

    Nothing is planned when the organization has no Marketo connection or the
    agent's Marketo writeback is off: `backfill_marketo` plans those later.
    `lookups` shares the connection and rule reads across the events of one request.
    """
    return _insert_new(_planned_writes(event, priority, lookups or PlanningLookups()))


def plan_writes_for_events(events: list[InboundEvent], *, lookups: PlanningLookups) -> list[WritebackRecord]:
    """Create the pending writeback records of several events of one organization in one insert, and return the new ones."""
    planned = []
    for event in events:
        planned += _planned_writes(event, WritebackRecord.Priority.LIVE, lookups)
    return _insert_new(planned)


def _planned_writes(event: InboundEvent, priority: int, lookups: PlanningLookups) -> list[WritebackRecord]:
    connection = lookups.connection(event.organization_id)
    if connection is None or connection.status == MarketoConnection.Status.DISCONNECTED:
        return []

    writeback = getattr(event.agent, "writeback", None)
    if writeback is None or not writeback.marketo_enabled:
        return []
    if not (writeback.lead_sync or writeback.activity_sync or writeback.program_enrollment):
        return []

    if event.conversation_id:
        planned = _plan_conversation(event, event.conversation, connection, writeback, lookups)
    else:
        planned = _plan_meeting(event, event.meeting, writeback, lookups)

    for record in planned:
        record.priority = priority
    return planned


def _plan_conversation(event, conversation: Conversation, connection, writeback, lookups) -> list[WritebackRecord]:
    if not conversation.visitor_id:
        # Without a usable email there is no lead to write to. The
        # conversation stays stored, and a skipped lead record shows why
        # among the event's writeback records.
        logger.info(
            "writeback.plan.no_lead org=%s conversation=%s reason=%s",
            event.organization_id, conversation.external_id, conversation.email_problem,
        )
        return [
            _no_lead_record(
                event,
                f"lead:conversation:{conversation.external_id}",
                conversation.email_problem or "The visitor has no email address.",
                conversation=conversation,
            )
        ]

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
        for rule in lookups.rules(event.agent_id, CONVERSATION_TRIGGERS):
            records.append(_enrollment_record(rule, f"conversation:{conversation.external_id}", common))

    cookie = conversation.munchkin_cookie
    if cookie and _cookie_matches_munchkin(cookie, connection.munchkin_id):
        digest = hashlib.sha256(cookie.encode("utf-8")).hexdigest()[:24]
        records.append(
            WritebackRecord(action=Action.ASSOCIATE, dedupe_key=f"associate:{email}:{digest}", **common)
        )
    return records


def _plan_meeting(event, meeting: Meeting, writeback, lookups) -> list[WritebackRecord]:
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
        problem = snapshot.get("attendee_email_problem") or "The meeting has no attendee email."
        return [
            _no_lead_record(
                event,
                f"lead:event:{event.event_id}",
                f"{problem} The meeting names no booking conversation with a usable email either.",
                meeting=meeting,
                conversation=conversation,
            )
        ]

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
        for rule in lookups.rules(event.agent_id, MEETING_TRIGGERS):
            record = _enrollment_record(rule, f"meeting:{meeting.external_id}", common)
            record.not_before = not_before
            records.append(record)
    return records


def _no_lead_record(event, dedupe_key: str, problem: str, **subject) -> WritebackRecord:
    """Return a skipped lead record that states why the event's Marketo writes were not made.

    Its dedupe key is the lead write's own, so a replay or a backfill never
    plans that write later: the stored email can't change.
    """
    return WritebackRecord(
        organization_id=event.organization_id,
        agent_id=event.agent_id,
        event=event,
        action=Action.LEAD,
        dedupe_key=dedupe_key,
        status=WritebackRecord.Status.SKIPPED,
        completed_at=timezone.now(),
        last_error=f"No Marketo lead to write to: {problem} The lead, its activity and program status were not written.",
        last_error_code="no_email",
        **subject,
    )


def _enrollment_record(rule: EnrollmentRule, subject_key: str, common: dict) -> WritebackRecord:
    return WritebackRecord(
        action=Action.ENROLLMENT,
        dedupe_key=f"enrollment:rule:{rule.pk}:{subject_key}",
        enrollment_rule=rule,
        program_id=rule.program_id,
        program_status=rule.status_name,
        **common,
    )


def _insert_new(records: list[WritebackRecord]) -> list[WritebackRecord]:
    """Insert the records whose dedupe key is new, in one statement; return the inserted ones.

    All records belong to one organization. A key planned twice in the list
    (one visitor's Munchkin cookie in two conversations of a request) is
    inserted once.
    """
    if not records:
        return []
    organization_id = records[0].organization_id
    taken_keys = set(
        WritebackRecord.objects.filter(
            organization_id=organization_id, dedupe_key__in={record.dedupe_key for record in records}
        ).values_list("dedupe_key", flat=True)
    )
    new = []
    for record in records:
        if record.dedupe_key not in taken_keys:
            taken_keys.add(record.dedupe_key)
            new.append(record)
    if not new:
        return []

    try:
        with transaction.atomic():
            WritebackRecord.objects.bulk_create(new)
    except IntegrityError:
        # Another planner inserted one of these keys since the read above
        # (a replay racing a backfill): insert one at a time and skip the taken keys.
        return [record for record in new if _insert_once(record)]
    return new


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
