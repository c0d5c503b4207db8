"""The sandbox's call log, which the two-worker test reads to check windows and concurrency."""

from tests.sandbox.fixtures import SandboxApi, start_sandbox


def test_call_log_records_calls_and_rejections():
    server = start_sandbox(rate_limit_calls=2, rate_window_seconds=60)
    try:
        api = SandboxApi(server)
        for _ in range(3):
            api.get("/rest/v1/stats/usage.json")
        log = server.state.dump()["call_log"]
    finally:
        server.stop()

    answered, rejected = log[:2], log[2:]
    assert len(log) == 3
    assert [entry["rejected_with"] for entry in answered] == [None, None]
    assert all(entry["finished_at"] >= entry["started_at"] for entry in answered)
    assert [entry["rejected_with"] for entry in rejected] == ["606"]
    assert rejected[0]["finished_at"] == rejected[0]["started_at"]
    assert {entry["path"] for entry in log} == {"/rest/v1/stats/usage.json"}
