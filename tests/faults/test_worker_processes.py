"""Real worker processes: one killed inside the activity call, and two flushing one connection at once."""

import signal
import time

import pytest
import requests

from tests.factories import conversation_event
from tests.faults.workers import kill, written_count
from tests.writeback.helpers import activity_type_ids

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ACTIVITIES_PATH = "/rest/v1/activities/external.json"
PRICING_AGENT = "agt_p7k2m9x4q1ra"


def control(sandbox, operation: str, body: dict):
    response = requests.post(f"{sandbox.url}/_sandbox/{operation}", json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def conversations(count: int, prefix: str) -> list[dict]:
    return [
        conversation_event(
            event_id=f"evt_{prefix}{index}",
            conversation_id=f"conv_{prefix}{index}",
            email=f"{prefix}{index}@example.org",
            agent_id=PRICING_AGENT,
        )
        for index in range(count)
    ]


def conversation_ids_written(sandbox) -> list[str]:
    type_id = activity_type_ids(sandbox)["docketConversation"]
    with sandbox.state.lock:
        return [
            activity["primaryAttributeValue"]
            for activity in sandbox.state.activities
            if activity["activityTypeId"] == type_id
        ]


def wait_for(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting until {message}")


def test_killed_after_apply_writes_once(worker_db, sandbox):
    prepared = worker_db.prepare(conversations(5, "kill"))
    assert prepared["accepted"] == 5
    # The sandbox stores the activities, then delays the response: the worker
    # is inside the call when it dies, with the batch marked in flight.
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "delay_after_apply_seconds": 30})

    worker = worker_db.start_drain(timeout_seconds=60)
    wait_for(lambda: len(conversation_ids_written(sandbox)) == 5, 30, "the sandbox applied the activities")
    kill(worker)

    assert worker.returncode == -signal.SIGKILL
    before = worker_db.snapshot()
    activity_states = {record["status"] for record in before["records"] if record["action"] == "activity"}
    assert activity_states == {"in_flight"}
    assert [batch["status"] for batch in before["batches"] if batch["action"] == "activity"] == ["in_flight"]

    output = worker_db.run_drain(timeout_seconds=60)

    after = worker_db.snapshot()
    assert sorted(conversation_ids_written(sandbox)) == [f"conv_kill{index}" for index in range(5)]
    assert {record["status"] for record in after["records"] if record["action"] == "activity"} == {"succeeded"}
    assert [batch["status"] for batch in after["batches"] if batch["action"] == "activity"] == ["reconciled"]
    assert written_count(output, "activity") == 5
    assert "pending: 0" in output


def test_killed_before_apply_sends_once(worker_db, sandbox):
    worker_db.prepare(conversations(3, "early"))
    # Held before the endpoint runs: the worker dies, then the sandbox applies
    # the call it had already received, as Marketo would.
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "delay_seconds": 1.5})

    worker = worker_db.start_drain(timeout_seconds=60)
    wait_for(lambda: not sandbox.state.faults.describe(), 30, "the worker's activity call reached the sandbox")
    kill(worker)
    wait_for(lambda: len(conversation_ids_written(sandbox)) == 3, 10, "the sandbox applied the held call")

    output = worker_db.run_drain(timeout_seconds=60)

    assert sorted(conversation_ids_written(sandbox)) == [f"conv_early{index}" for index in range(3)]
    assert written_count(output, "activity") == 3


def test_two_workers_one_sender(worker_db, sandbox):
    worker_db.prepare(conversations(20, "twice"))
    # The first sender is slow inside its activity call while the second
    # worker starts: a task delivered twice.
    control(sandbox, "faults", {"path": ACTIVITIES_PATH, "method": "POST", "delay_seconds": 1.0})

    first = worker_db.start_drain(timeout_seconds=60)
    second = worker_db.start_drain(timeout_seconds=60)
    outputs = []
    for process in (first, second):
        stdout, stderr = process.communicate(timeout=90)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(stdout)

    assert sorted(written_count(output, "activity") for output in outputs) == [0, 20]
    written = conversation_ids_written(sandbox)
    assert len(written) == 20
    assert len(set(written)) == 20
