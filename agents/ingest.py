"""Storing Docket events and queueing their writeback.

Each event is stored with its writeback records in one transaction, so an
event is either fully accepted or not at all, and one bad event never costs
the valid events beside it. The flush task is queued only after commit, so
no worker looks for rows that don't exist yet.
"""

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from agents.attribution import resolve_attribution
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

logger = logging.getLogger(__name__)


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


def ingest_events(organization: Organization, raw_events: list) -> IngestReport:
    """Validate and store events; return counts and a reason for each rejected one."""
    from integrations.writeback.planning import PlanningLookups
    from integrations.writeback.queueing import queue_flush_after_commit

    report = IngestReport()
    # Rows every event of the request reads the same: agents, the connection
    # and enrollment rules.
    lookups = PlanningLookups()
    agents: dict[str, Agent] = {}
    for index, raw in enumerate(raw_events):
        try:
            event = validate_event(raw)
        except InvalidEvent as error:
            report.rejected.append(
                {"index": index, "event_id": error.event_id, "field": error.field, "reason": error.reason}
            )
            logger.info(
                "ingest.event.rejected org=%s index=%s event_id=%s field=%s",
                organization.slug, index, error.event_id, error.field,
            )
            continue

        try:
            with transaction.atomic():
                stored = store_event(organization, event, lookups=lookups, agents=agents)
        except IntegrityError:
            # Another request stored the same event_id between our check and
            # our insert: that delivery won, so this one is a duplicate. An
            # agent created in the rolled-back transaction no longer exists.
            stored = None
            agents.clear()

        if stored is None:
            report.duplicates += 1
            continue

        report.accepted += 1
        for warning in event.warnings:
            report.warnings.append({"index": index, "event_id": event.event_id, "warning": warning})

    if report.accepted:
        queue_flush_after_commit(organization.pk)
    logger.info(
        "ingest.batch.done org=%s accepted=%s duplicates=%s rejected=%s",
        organization.slug, report.accepted, report.duplicates, len(report.rejected),
    )
    return report


def store_event(organization: Organization, event: ValidEvent, *, lookups=None, agents: dict | None = None) -> InboundEvent | None:
    """Store one validated event and plan its writeback; None when it is a duplicate.

    Must run inside a transaction. `lookups` (PlanningLookups) and `agents`
    (agents by external id) carry reads shared by the events of one request.
    """
    from integrations.writeback.planning import plan_event_writes

    if InboundEvent.objects.filter(organization=organization, event_id=event.event_id).exists():
        return None

    agents = {} if agents is None else agents
    agent = agents.get(event.agent_id)
    if agent is None or (event.agent_name and not agent.name):
        agent = get_or_create_agent(organization, event.agent_id, event.agent_name)
        agents[event.agent_id] = agent
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

    resolved = resolve_attribution(data["attribution"], data["landing_page_url"], data["page_url"])

    visitor = None
    if data["email"]:
        visitor = _lock_visitor(organization, data["email"])

    conversation = Conversation.objects.create(
        organization=organization,
        agent=agent,
        external_id=data["id"],
        visitor=visitor,
        raw_email=data["raw_email"][:500],
        email_problem=data["email_problem"],
        visitor_fields=data["visitor"],
        started_at=data["started_at"],
        ended_at=data["ended_at"],
        page_url=data["page_url"],
        landing_page_url=data["landing_page_url"],
        referrer=data["referrer"],
        attribution=resolved.values,
        attribution_sources=resolved.sources,
        munchkin_cookie=data["munchkin_cookie"][:500],
        summary=data["summary"],
        transcript=data["transcript"],
        meeting_status=data["meeting_status"],
        post_call_analysis=data["post_call_analysis"],
    )
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


def refresh_visitor_touches(visitor: Visitor) -> dict[int, int]:
    """Recompute first and latest touch and interaction counts from stored conversations.

    Ordering is by `started_at`, so conversations arriving out of order
    still give the right first touch and never regress the latest touch.
    Returns each conversation's interaction count by conversation id.
    """
    ordered = list(
        Conversation.objects.filter(visitor=visitor)
        .order_by("started_at", "id")
        .only("id", "started_at", "interaction_count")
    )

    interaction_counts = {}
    for position, conversation in enumerate(ordered, start=1):
        interaction_counts[conversation.pk] = position
        if conversation.interaction_count != position:
            Conversation.objects.filter(pk=conversation.pk).update(interaction_count=position)

    visitor.first_interaction_at = ordered[0].started_at if ordered else None
    visitor.latest_interaction_at = ordered[-1].started_at if ordered else None
    visitor.conversation_count = len(ordered)
    visitor.first_conversation_id = ordered[0].pk if ordered else None
    visitor.latest_conversation_id = ordered[-1].pk if ordered else None
    visitor.save(
        update_fields=[
            "first_interaction_at",
            "latest_interaction_at",
            "conversation_count",
            "first_conversation",
            "latest_conversation",
            "updated_at",
        ]
    )
    return interaction_counts


def _store_meeting(organization: Organization, agent: Agent, event: ValidEvent) -> tuple[Meeting, dict]:
    data = event.meeting
    conversation = None
    if data["conversation_id"]:
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
