"""Storing Docket events and queueing their writeback.

Conversation events that follow each other in a request are stored as one
run, in one transaction with set-based statements (agents.conversation_run).
Meeting events, which update shared meeting rows in order, are stored one
transaction each. When a run's transaction fails, its events are stored one
transaction each instead, so an event is either fully accepted or not at
all, and one conflicting event never costs the valid events beside it. The
flush task is queued only after commit, so no worker looks for rows that
don't exist yet.
"""

import logging
from dataclasses import dataclass, field

from django.db import DataError, DatabaseError, IntegrityError, connection, transaction

from agents.conversation_locks import lock_conversation_ids
from agents.conversation_run import new_conversation, store_conversation_run
from agents.event_validation import InvalidEvent, ValidEvent, validate_event
from agents.models import (
    Agent,
    AgentWriteback,
    Conversation,
    InboundEvent,
    Meeting,
    Organization,
    Visitor,
)
from agents.visitor_touches import refresh_visitor_touches

logger = logging.getLogger(__name__)

# Maximum conversation events stored in one transaction. A request's longer
# run of conversations is stored in several, so every statement's parameter
# count stays far below SQLite's limit.
CONVERSATION_RUN_MAX_EVENTS = 200


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)

    def as_response(self) -> dict:
        response = {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}
        # Accepted events with a problem the sender should fix (an unusable
        # email, an end before the start); the key appears only when needed.
        if self.warnings:
            response["warnings"] = self.warnings
        return response

    def count(self, index: int, event: ValidEvent, stored: InboundEvent | None):
        if stored is None:
            self.duplicates += 1
            return
        self.accepted += 1
        for warning in event.warnings:
            self.warnings.append({"index": index, "event_id": event.event_id, "warning": warning})


def ingest_events(organization: Organization, raw_events: list) -> IngestReport:
    """Validate and store events; return counts and a reason for each rejected one."""
    from integrations.writeback.planning import PlanningLookups
    from integrations.writeback.queueing import queue_flush_after_commit

    # Rows every event of the request reads the same: agents, the connection
    # and enrollment rules.
    ingest = _RequestIngest(organization, PlanningLookups())
    run: list[tuple[int, ValidEvent]] = []
    for index, raw in enumerate(raw_events):
        try:
            event = validate_event(raw)
        except InvalidEvent as error:
            ingest.report.rejected.append(
                {"index": index, "event_id": error.event_id, "field": error.field, "reason": error.reason}
            )
            logger.info(
                "ingest.event.rejected org=%s index=%s event_id=%s field=%s",
                organization.slug, index, error.event_id, error.field,
            )
            continue

        if event.conversation is not None:
            run.append((index, event))
            if len(run) >= CONVERSATION_RUN_MAX_EVENTS:
                ingest.store_run(run)
                run = []
            continue

        # A meeting may name a conversation earlier in the request, so that
        # conversation is stored first.
        ingest.store_run(run)
        run = []
        ingest.store_one(index, event)
    ingest.store_run(run)

    report = ingest.report
    if report.accepted:
        queue_flush_after_commit(organization.pk)
    logger.info(
        "ingest.batch.done org=%s accepted=%s duplicates=%s rejected=%s",
        organization.slug, report.accepted, report.duplicates, len(report.rejected),
    )
    return report


class _RequestIngest:
    """The stores of one request, with the reads its events share."""

    def __init__(self, organization: Organization, lookups):
        self.organization = organization
        self.lookups = lookups
        self.agents: dict[str, Agent] = {}
        self.report = IngestReport()

    def store_run(self, run: list[tuple[int, ValidEvent]]):
        if not run:
            return
        if not connection.features.can_return_rows_from_bulk_insert:
            # SQLite before 3.35 returns no ids from a bulk insert, and a run
            # needs them to link events and writeback records.
            for index, event in run:
                self.store_one(index, event)
            return
        try:
            with transaction.atomic():
                stored = store_conversation_run(
                    self.organization,
                    [event for _, event in run],
                    lookups=self.lookups,
                    agents=self.agents,
                    get_agent=self.agent_for,
                )
        except DatabaseError as error:
            # A concurrent delivery of one of these events or a deadlock with
            # another request can fail the whole run. Each event then gets its
            # own transaction, where a conflict costs only that event. An
            # outage fails there again and reaches the caller.
            logger.info(
                "ingest.run.one_by_one org=%s events=%s first_event_id=%s reason=%s",
                self.organization.slug, len(run), run[0][1].event_id, type(error).__name__,
            )
            # Agents created in the rolled-back transaction no longer exist.
            self.agents.clear()
            for index, event in run:
                self.store_one(index, event)
            return

        for (index, event), inbound in zip(run, stored):
            self.report.count(index, event, inbound)

    def store_one(self, index: int, event: ValidEvent):
        try:
            with transaction.atomic():
                stored = store_event(self.organization, event, lookups=self.lookups, agents=self.agents)
        except IntegrityError:
            # Another request stored the same event_id between our check and
            # our insert: that delivery won, so this one is a duplicate. An
            # agent created in the rolled-back transaction no longer exists.
            stored = None
            self.agents.clear()
        except DataError as error:
            # A value the database can't store got past validation. Rejecting
            # this event keeps the request, and every retry of it, from
            # failing for the events beside it.
            self.agents.clear()
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            logger.error(
                "ingest.event.unstorable org=%s index=%s event_id=%s error=%s",
                self.organization.slug, index, event.event_id, reason,
            )
            self.report.rejected.append(
                {
                    "index": index,
                    "event_id": event.event_id,
                    "field": "event",
                    "reason": f"The database could not store this event ({reason}). Shorten or correct the value it names, then send the event again.",
                }
            )
            return
        self.report.count(index, event, stored)

    def agent_for(self, event: ValidEvent) -> Agent:
        return _cached_agent(self.organization, event, self.agents)


def _cached_agent(organization: Organization, event: ValidEvent, agents: dict[str, Agent]) -> Agent:
    agent = agents.get(event.agent_id)
    if agent is None or (event.agent_name and not agent.name):
        agent = get_or_create_agent(organization, event.agent_id, event.agent_name)
        agents[event.agent_id] = agent
    return agent


def store_event(organization: Organization, event: ValidEvent, *, lookups=None, agents: dict | None = None) -> InboundEvent | None:
    """Store one validated event and plan its writeback; None when it is a duplicate.

    Must run inside a transaction. `lookups` (PlanningLookups) and `agents`
    (agents by external id) carry reads shared by the events of one request.
    """
    from integrations.writeback.planning import plan_event_writes

    if InboundEvent.objects.filter(organization=organization, event_id=event.event_id).exists():
        return None

    agent = _cached_agent(organization, event, {} if agents is None else agents)
    if event.conversation is not None:
        if Conversation.objects.filter(
            organization=organization, external_id=event.conversation["id"]
        ).exists():
            # The conversation already arrived under another event id; storing
            # it twice would write a second activity.
            return None
        conversation = _store_conversation(organization, agent, event.conversation)
        inbound = InboundEvent.objects.create(
            organization=organization,
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            agent=agent,
            conversation=conversation,
            payload=event.payload,
        )
    else:
        meeting, snapshot = _store_meeting(organization, agent, event)
        inbound = InboundEvent.objects.create(
            organization=organization,
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            agent=agent,
            meeting=meeting,
            meeting_snapshot=snapshot,
            payload=event.payload,
        )

    plan_event_writes(inbound, lookups=lookups)
    return inbound


def get_or_create_agent(organization: Organization, external_id: str, name: str = "") -> Agent:
    """Return the agent; an unknown id is created with writeback off so no event is lost."""
    # The writeback switches come along, because planning reads them next.
    agent, created = Agent.objects.select_related("writeback").get_or_create(
        organization=organization,
        external_id=external_id,
        defaults={"name": name, "created_from_event": True},
    )
    if created:
        AgentWriteback.objects.create(agent=agent)
        logger.info("ingest.agent.created org=%s agent=%s", organization.slug, external_id)
    elif name and not agent.name:
        agent.name = name
        agent.save(update_fields=["name"])
    return agent


def _store_conversation(organization: Organization, agent: Agent, data: dict) -> Conversation:
    from integrations.writeback.planning import release_meeting_records

    lock_conversation_ids(organization.pk, [data["id"]])
    visitor = None
    if data["email"]:
        visitor = _lock_visitor(organization, data["email"])

    conversation = new_conversation(organization, agent, data, visitor)
    conversation.save(force_insert=True)
    if visitor is not None:
        interaction_counts = refresh_visitor_touches(visitor)
        conversation.interaction_count = interaction_counts[conversation.pk]

    # Meetings booked in this conversation may have arrived first; link them
    # so their activities carry this conversation's attribution. The
    # conversation is new, so when no meeting was linked here no meeting
    # names it and no meeting write waits for it.
    linked = Meeting.objects.filter(
        organization=organization, conversation_external_id=conversation.external_id, conversation=None
    ).update(conversation=conversation)
    if linked:
        release_meeting_records(conversation)
    return conversation


def _lock_visitor(organization: Organization, email: str) -> Visitor:
    # Insert the visitor unless it exists: two statements, where get_or_create
    # takes four for a new visitor. Then lock the row, so two conversations of
    # one visitor stored at the same time can't both compute a stale count.
    # The lock matters on PostgreSQL; SQLite already serializes writers. A
    # concurrent insert of the same email waits on the unique constraint.
    Visitor.objects.bulk_create([Visitor(organization=organization, email=email)], ignore_conflicts=True)
    return Visitor.objects.select_for_update().get(organization=organization, email=email)


def _store_meeting(organization: Organization, agent: Agent, event: ValidEvent) -> tuple[Meeting, dict]:
    data = event.meeting
    conversation = None
    if data["conversation_id"]:
        lock_conversation_ids(organization.pk, [data["conversation_id"]])
        conversation = Conversation.objects.filter(
            organization=organization, external_id=data["conversation_id"]
        ).first()

    fields = {
        "agent": agent,
        "booking_id": data["booking_id"],
        "conversation_external_id": data["conversation_id"],
        "subject": data["subject"],
        "description": data["description"],
        "start_at": data["start_at"],
        "end_at": data["end_at"],
        "owner_name": data["owner_name"],
        "owner_email": data["owner_email"],
        "attendee": {**data["attendee"], "email": data["attendee_email"]},
        "conferencing_url": data["conferencing_url"],
        "status": data["status"],
    }
    if conversation is not None:
        fields["conversation"] = conversation

    meeting, created = Meeting.objects.select_for_update().get_or_create(
        organization=organization, external_id=data["id"], defaults=fields
    )
    if not created:
        # Keep fields an update leaves empty (a cancel event may omit times).
        for key, value in fields.items():
            if value not in ("", None, {}):
                setattr(meeting, key, value)
        meeting.save()

    snapshot = {
        "status": data["status"],
        "booking_id": data["booking_id"],
        "subject": data["subject"],
        "description": data["description"],
        "start_at": data["start_at"].isoformat() if data["start_at"] else "",
        "end_at": data["end_at"].isoformat() if data["end_at"] else "",
        "owner_name": data["owner_name"],
        "owner_email": data["owner_email"],
        "attendee_email": data["attendee_email"],
        "attendee_email_problem": data["attendee_email_problem"],
        "attendee": data["attendee"],
        "conferencing_url": data["conferencing_url"],
        "conversation_id": data["conversation_id"],
    }
    return meeting, snapshot
