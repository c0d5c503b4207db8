"""Storing a run of conversation events in one transaction with set-based statements.

Storing conversations one transaction each costs about fourteen statements
per conversation, which made ingest, not Marketo's rate limit, the slowest
part of a bulk writeback. A run of conversation events from one request is
stored here with about a dozen statements in all. There are two reads for
known event and conversation ids, an insert and a locking read for the
visitors, and inserts for conversations, events and writeback records.
Visitor touches take one read and one update.

The caller runs this inside a transaction and, when the transaction fails
(a concurrent delivery of the same event, a deadlock), stores the run's
events one at a time instead, so a conflict never costs the other events.
"""

import logging

from django.utils import timezone

from agents.attribution import resolve_attribution
from agents.conversation_locks import lock_conversation_ids
from agents.event_validation import ValidEvent
from agents.models import Agent, Conversation, InboundEvent, Meeting, Organization, Visitor
from agents.visitor_touches import TOUCH_FIELDS, apply_touches
from integrations.writeback.row_updates import update_rows

logger = logging.getLogger(__name__)


def store_conversation_run(
    organization: Organization, events: list[ValidEvent], *, lookups, agents: dict[str, Agent], get_agent
) -> list[InboundEvent | None]:
    """Store conversation events and plan their writeback.

    Returns one stored event per event, or None for a duplicate. Must run
    inside a transaction. `lookups` (PlanningLookups) and `agents`
    carry reads shared by the events of one request. `get_agent` returns an
    event's agent and creates an unknown one.
    """
    from integrations.writeback.planning import plan_writes_for_events, release_meeting_records

    results: list[InboundEvent | None] = [None] * len(events)
    fresh = _fresh_events(organization, events)
    if not fresh:
        return results

    # Meetings stored at the same time that name one of these conversations
    # wait for this transaction, and this transaction waits for them.
    lock_conversation_ids(organization.pk, [event.conversation["id"] for _, event in fresh])
    visitors = _lock_visitors(organization, {event.conversation["email"] for _, event in fresh})

    conversations = []
    for _, event in fresh:
        conversation = new_conversation(
            organization, get_agent(event), event.conversation, visitors.get(event.conversation["email"])
        )
        conversations.append(conversation)
    Conversation.objects.bulk_create(conversations)

    _refresh_touches(visitors, conversations)
    for conversation in _link_waiting_meetings(organization, conversations):
        release_meeting_records(conversation)

    inbound_events = [
        InboundEvent(
            organization=organization,
            event_id=event.event_id,
            type=event.type,
            occurred_at=event.occurred_at,
            agent=conversation.agent,
            conversation=conversation,
            payload=event.payload,
        )
        for (_, event), conversation in zip(fresh, conversations)
    ]
    InboundEvent.objects.bulk_create(inbound_events)
    plan_writes_for_events(inbound_events, lookups=lookups)

    for (position, _), inbound in zip(fresh, inbound_events):
        results[position] = inbound
    logger.debug(
        "ingest.run.stored org=%s events=%s stored=%s", organization.slug, len(events), len(inbound_events)
    )
    return results


def _fresh_events(organization: Organization, events: list[ValidEvent]) -> list[tuple[int, ValidEvent]]:
    """Return (position, event) for events whose event id and conversation id are both new.

    A conversation that arrives again under another event id is a duplicate
    too: storing it twice would write a second activity. Within the run the
    first occurrence wins.
    """
    known_event_ids = set(
        InboundEvent.objects.filter(
            organization=organization, event_id__in={event.event_id for event in events}
        ).values_list("event_id", flat=True)
    )
    known_conversation_ids = set(
        Conversation.objects.filter(
            organization=organization, external_id__in={event.conversation["id"] for event in events}
        ).values_list("external_id", flat=True)
    )

    fresh = []
    for position, event in enumerate(events):
        conversation_id = event.conversation["id"]
        if event.event_id in known_event_ids or conversation_id in known_conversation_ids:
            continue
        known_event_ids.add(event.event_id)
        known_conversation_ids.add(conversation_id)
        fresh.append((position, event))
    return fresh


def _lock_visitors(organization: Organization, emails: set[str]) -> dict[str, Visitor]:
    """Insert the visitors that don't exist, lock all of them and return them by email.

    Both statements go in email order, so two requests sharing visitors
    take their row locks in the same order and can't deadlock. The locks
    keep two conversations of one visitor, stored at the same time, from
    both computing a stale interaction count (SQLite serializes writers).
    """
    emails = sorted(email for email in emails if email)
    if not emails:
        return {}
    Visitor.objects.bulk_create(
        [Visitor(organization=organization, email=email) for email in emails], ignore_conflicts=True
    )
    locked = Visitor.objects.select_for_update().filter(organization=organization, email__in=emails).order_by("email")
    return {visitor.email: visitor for visitor in locked}


def new_conversation(organization: Organization, agent: Agent, data: dict, visitor: Visitor | None) -> Conversation:
    """Return an unsaved conversation from a validated event's conversation data."""
    resolved = resolve_attribution(data["attribution"], data["landing_page_url"], data["page_url"])
    return Conversation(
        organization=organization,
        agent=agent,
        external_id=data["id"],
        visitor=visitor,
        raw_email=data["raw_email"][:500],
        # The column is 200 characters. Validation keeps problems shorter,
        # and the cut keeps a longer one from failing the whole request.
        email_problem=data["email_problem"][:200],
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


def _refresh_touches(visitors: dict[str, Visitor], conversations: list[Conversation]):
    """Recompute the touched visitors' first and latest touch and every interaction count."""
    by_pk = {visitor.pk: visitor for visitor in visitors.values()}
    if not by_pk:
        return
    ordered: dict[int, list[tuple]] = {pk: [] for pk in by_pk}
    rows = (
        Conversation.objects.filter(visitor_id__in=by_pk)
        .order_by("visitor_id", "started_at", "id")
        .values_list("visitor_id", "id", "started_at", "interaction_count")
    )
    for visitor_id, *row in rows:
        ordered[visitor_id].append(tuple(row))

    counts: dict[int, int] = {}
    stale: list[Conversation] = []
    for visitor_id, visitor in by_pk.items():
        visitor_counts, visitor_stale = apply_touches(visitor, ordered[visitor_id])
        counts.update(visitor_counts)
        stale += [Conversation(pk=pk, interaction_count=count) for pk, count in visitor_stale.items()]

    for conversation in conversations:
        if conversation.visitor_id is not None:
            conversation.interaction_count = counts[conversation.pk]
    # New conversations were inserted with the default count of 1, and older
    # ones move when a new conversation started before them. Both are stale.
    update_rows(Conversation, stale, ["interaction_count"])

    now = timezone.now()
    for visitor in by_pk.values():
        visitor.updated_at = now
    update_rows(Visitor, list(by_pk.values()), TOUCH_FIELDS)


def _link_waiting_meetings(organization: Organization, conversations: list[Conversation]) -> list[Conversation]:
    """Link meetings that arrived before their booking conversation and return the conversations that got one."""
    by_external_id = {conversation.external_id: conversation for conversation in conversations}
    waiting = Meeting.objects.filter(
        organization=organization, conversation_external_id__in=by_external_id, conversation=None
    ).values_list("pk", "conversation_external_id")

    linked = {}
    for meeting_pk, external_id in waiting:
        linked.setdefault(external_id, []).append(meeting_pk)
    for external_id, meeting_pks in linked.items():
        Meeting.objects.filter(pk__in=meeting_pks).update(conversation=by_external_id[external_id])
    return [by_external_id[external_id] for external_id in linked]
