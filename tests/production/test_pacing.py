"""The batch window paced to the connection's daily budget, through real flushes against the sandbox."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.ingest import ingest_events
from integrations.models import MarketoConnection, WritebackRecord
from integrations.writeback.flush import flush_connection
from integrations.writeback.pacing import batch_window
from tests.factories import conversation_event
from tests.writeback.helpers import conversation_activities

AGENT = "agt_p7k2m9x4q1ra"


@pytest.mark.parametrize(
    "configured, quota_percent, expected",
    [
        (3, 50, 86_400 * 4 / 25_000),  # 13.8 s: the default budget paces the window
        (3, 100, 86_400 * 4 / 50_000),  # 6.9 s: the whole quota
        (30, 50, 30),  # a longer configured window wins
        (0, 50, 0),  # 0 sends at once
    ],
    ids=["default-budget", "whole-quota", "configured-longer", "zero-sends-at-once"],
)
def test_batch_window_paced_by_budget(db, settings, configured, quota_percent, expected):
    settings.WRITEBACK_BATCH_WINDOW_SECONDS = configured
    connection = MarketoConnection(daily_quota=50_000, docket_quota_percent=quota_percent)

    assert batch_window(connection).total_seconds() == pytest.approx(expected)


def test_flush_waits_for_paced_window(connected, sandbox, settings):
    settings.WRITEBACK_BATCH_WINDOW_SECONDS = 3
    ingest_events(connected, [conversation_event(event_id="evt_paced", conversation_id="conv_paced", agent_id=AGENT)])
    connection_id = connected.marketo_connection.pk
    calls_before = sandbox.state.calls_today()

    # Older than the configured 3 s, younger than the paced 13.8 s: nothing goes.
    WritebackRecord.objects.update(created_at=timezone.now() - timedelta(seconds=5))
    waiting = flush_connection(connection_id)
    calls_waiting = sandbox.state.calls_today()

    WritebackRecord.objects.update(created_at=timezone.now() - timedelta(seconds=14))
    sent = flush_connection(connection_id)

    assert waiting.written == {}
    assert calls_waiting == calls_before
    assert sent.written.get("activity") == 1
    assert len(conversation_activities(sandbox, "conv_paced")) == 1
