"""A visitor's first and latest touch and each conversation's interaction count.

Both come from the visitor's stored conversations ordered by `started_at`,
so conversations arriving out of order still give the right first touch
and never move the latest touch back.
"""

from agents.models import Conversation, Visitor

TOUCH_FIELDS = [
    "first_interaction_at",
    "latest_interaction_at",
    "conversation_count",
    "first_conversation",
    "latest_conversation",
    "updated_at",
]


def apply_touches(visitor: Visitor, ordered: list[tuple]) -> tuple[dict[int, int], dict[int, int]]:
    """Set the visitor's touch fields from its conversations and return (counts, stale counts).

    `ordered` contains (conversation id, started_at, stored interaction count)
    in (started_at, id) order. Both results map conversation ids to
    interaction counts: every conversation's, and those whose stored count
    differs. The caller saves the visitor and the stale counts.
    """
    counts = {}
    stale = {}
    for position, (pk, _started_at, stored_count) in enumerate(ordered, start=1):
        counts[pk] = position
        if stored_count != position:
            stale[pk] = position

    first = ordered[0] if ordered else None
    latest = ordered[-1] if ordered else None
    visitor.first_interaction_at = first[1] if first else None
    visitor.latest_interaction_at = latest[1] if latest else None
    visitor.conversation_count = len(ordered)
    visitor.first_conversation_id = first[0] if first else None
    visitor.latest_conversation_id = latest[0] if latest else None
    return counts, stale


def refresh_visitor_touches(visitor: Visitor) -> dict[int, int]:
    """Recompute and save one visitor's touches, and return each conversation's interaction count by id."""
    ordered = list(
        Conversation.objects.filter(visitor=visitor)
        .order_by("started_at", "id")
        .values_list("id", "started_at", "interaction_count")
    )
    counts, stale = apply_touches(visitor, ordered)
    for pk, count in stale.items():
        Conversation.objects.filter(pk=pk).update(interaction_count=count)
    visitor.save(update_fields=TOUCH_FIELDS)
    return counts
