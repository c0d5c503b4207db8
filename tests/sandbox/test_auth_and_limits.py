"""Identity tokens, 601/602, role permissions (603), rate, concurrency and quota limits."""

import threading
import time

import pytest
import requests

from integrations.marketo.sandbox.seed import default_seed
from tests.sandbox.fixtures import DEMO_USER, FakeClock, SandboxApi, start_sandbox


def error_code(response) -> str | None:
    body = response.json()
    return None if body["success"] else body["errors"][0]["code"]


def test_token_reused_until_expiry():
    clock = FakeClock()
    server = start_sandbox(clock=clock, token_ttl_seconds=60)
    try:
        api = SandboxApi(server)
        first = api.fetch_token().json()
        clock.advance(15)
        second = api.fetch_token().json()

        assert first["token_type"] == "bearer"
        assert first["scope"] == DEMO_USER
        assert first["expires_in"] == 60
        assert second["access_token"] == first["access_token"]
        assert second["expires_in"] == 45

        clock.advance(50)
        third = api.fetch_token().json()
        assert third["access_token"] != first["access_token"]
        assert third["expires_in"] == 60
    finally:
        server.stop()


def test_expired_token_gives_602_then_601():
    clock = FakeClock()
    server = start_sandbox(clock=clock, token_ttl_seconds=30)
    try:
        api = SandboxApi(server)
        api.authenticate()
        assert api.get("/rest/v1/stats/usage.json").json()["success"] is True

        clock.advance(31)
        assert error_code(api.get("/rest/v1/stats/usage.json")) == "602"
        assert error_code(api.get("/rest/v1/stats/usage.json")) == "601"
        # Only the first call counted; 601 and 602 do not.
        assert server.state.calls_today(DEMO_USER) == 1
    finally:
        server.stop()


def test_expired_token_variant_602_always(sandbox, api):
    api.control("variants", {"expired_token": "602_always"})
    api.authenticate()
    api.control("expire_tokens")

    assert error_code(api.get("/rest/v1/stats/usage.json")) == "602"
    assert error_code(api.get("/rest/v1/stats/usage.json")) == "602"


def test_bad_credentials_give_401(sandbox):
    api = SandboxApi(sandbox, client_secret="wrong")
    response = api.fetch_token()

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "error_description": "Bad client credentials"}


def test_missing_or_query_token_gives_601(sandbox, api):
    token = api.authenticate()
    no_header = requests.get(f"{sandbox.url}/rest/v1/stats/usage.json", timeout=5)
    in_query = requests.get(f"{sandbox.url}/rest/v1/stats/usage.json", params={"access_token": token}, timeout=5)
    unknown = requests.get(f"{sandbox.url}/rest/v1/stats/usage.json", headers={"Authorization": "Bearer nope"}, timeout=5)

    assert no_header.status_code == 200
    assert error_code(no_header) == "601"
    assert error_code(in_query) == "601"
    assert error_code(unknown) == "601"
    assert sandbox.state.calls_today() == 0


def _seed_with_one_permission_per_client() -> dict:
    seed = default_seed()
    names = [
        "Read-Only Assets", "Read-Write Assets", "Read-Only Lead", "Read-Write Person",
        "Read-Only Activity", "Read-Write Activity", "Read-Only Activity Metadata", "Read-Write Activity Metadata",
    ]
    seed["api_clients"] = [
        {"client_id": f"client-{index}", "client_secret": "s", "user": f"user{index}@example.test", "permissions": [name]}
        for index, name in enumerate(names)
    ] + [{"client_id": "client-none", "client_secret": "s", "user": "none@example.test", "permissions": []}]
    return seed, names


# (method, path, kwargs, permissions that allow it)
PERMISSION_CASES = [
    ("GET", "/rest/asset/v1/channels.json", {}, {"Read-Only Assets", "Read-Write Assets"}),
    ("POST", "/rest/asset/v1/folders.json", {"data": {"name": "X", "parent": '{"id":10,"type":"Folder"}'}}, {"Read-Write Assets"}),
    ("GET", "/rest/v1/leads/describe2.json", {}, {"Read-Only Lead", "Read-Write Person"}),
    ("POST", "/rest/v1/leads.json", {"json": {"input": []}}, {"Read-Write Person"}),
    ("GET", "/rest/v1/activities/types.json", {}, {"Read-Only Activity", "Read-Write Activity"}),
    ("POST", "/rest/v1/activities/external.json", {"json": {"input": []}}, {"Read-Write Activity"}),
    ("GET", "/rest/v1/activities/external/types.json", {}, {"Read-Only Activity Metadata", "Read-Write Activity Metadata"}),
    ("POST", "/rest/v1/activities/external/type.json", {"json": {}}, {"Read-Write Activity Metadata"}),
    ("GET", "/rest/v1/leads/1001/programMembership.json", {}, {"Read-Only Assets", "Read-Write Assets"}),
    ("GET", "/rest/v1/stats/usage.json", {}, None),
]


@pytest.mark.parametrize("method,path,kwargs,allowed", PERMISSION_CASES)
def test_permission_gates_endpoint(method, path, kwargs, allowed):
    seed, names = _seed_with_one_permission_per_client()
    server = start_sandbox(seed)
    try:
        for index, name in enumerate([*names, None]):
            client_id = f"client-{index}" if name else "client-none"
            api = SandboxApi(server, client_id=client_id, client_secret="s")
            response = api.post(path, **kwargs) if method == "POST" else api.get(path)
            code = error_code(response)
            expected_allowed = allowed is None or name in allowed
            if expected_allowed:
                assert code != "603", f"{name} should reach {method} {path}"
            else:
                assert code == "603", f"{name} should be denied {method} {path}"
                assert response.json()["errors"][0]["message"] == "Access denied"
    finally:
        server.stop()


def test_rate_limit_606_in_short_window():
    server = start_sandbox(rate_limit_calls=3, rate_window_seconds=0.6)
    try:
        api = SandboxApi(server)
        codes = [error_code(api.get("/rest/v1/stats/usage.json")) for _ in range(4)]
        assert codes[:3] == [None, None, None]
        assert codes[3] == "606"

        time.sleep(0.7)
        later = api.get("/rest/v1/stats/errors.json").json()
        assert later["success"] is True
        assert later["result"][0]["errors"] == [{"errorCode": "606", "count": 1}]
    finally:
        server.stop()


def test_rate_limit_message_names_limit():
    server = start_sandbox(rate_limit_calls=1, rate_window_seconds=20)
    try:
        api = SandboxApi(server)
        api.get("/rest/v1/stats/usage.json")
        body = api.get("/rest/v1/stats/usage.json").json()
        assert body["errors"][0] == {"code": "606", "message": "Max rate limit '1' exceeded with in '20' secs"}
    finally:
        server.stop()


def test_concurrency_limit_615():
    server = start_sandbox(max_concurrent=1)
    try:
        api = SandboxApi(server)
        api.authenticate()
        api.control("faults", {"path": "/rest/v1/leads/describe2.json", "delay_seconds": 0.8})
        slow = {}
        thread = threading.Thread(target=lambda: slow.update(response=api.get("/rest/v1/leads/describe2.json")))
        thread.start()
        time.sleep(0.3)
        second = SandboxApi(server)
        second.authenticate()
        blocked = second.get("/rest/v1/stats/usage.json")
        thread.join()

        assert error_code(blocked) == "615"
        assert slow["response"].json()["success"] is True
        # The slow call frees its slot just after its response is written,
        # so the client may read the response a moment before that.
        deadline = time.monotonic() + 2
        code = error_code(second.get("/rest/v1/stats/usage.json"))
        while code == "615" and time.monotonic() < deadline:
            time.sleep(0.05)
            code = error_code(second.get("/rest/v1/stats/usage.json"))
        assert code is None
    finally:
        server.stop()


def test_daily_quota_607_and_usage_counts():
    server = start_sandbox(daily_quota=3)
    try:
        api = SandboxApi(server)
        api.authenticate()
        api.authenticate()  # Identity calls do not count.
        results = [error_code(api.get("/rest/v1/stats/usage.json")) for _ in range(4)]

        assert results == [None, None, None, "607"]
        assert server.state.dump()["usage"]["calls_today_by_user"] == {DEMO_USER: 4}
        assert api.get("/rest/v1/stats/errors.json").json()["errors"][0]["code"] == "607"
    finally:
        server.stop()


def test_rejected_calls_variant_no_count():
    server = start_sandbox(daily_quota=1)
    try:
        api = SandboxApi(server)
        api.control("variants", {"rejected_calls_count": "no_count"})
        api.get("/rest/v1/stats/usage.json")
        api.get("/rest/v1/stats/usage.json")
        api.get("/rest/v1/stats/usage.json")
        assert server.state.calls_today(DEMO_USER) == 1
    finally:
        server.stop()


def test_usage_endpoints_shapes(sandbox, api):
    api.get("/rest/v1/stats/usage.json")
    api.get("/rest/nope.json")
    today = api.get("/rest/v1/stats/usage.json").json()["result"]
    week = api.get("/rest/v1/stats/usage/last7days.json").json()["result"]
    errors = api.get("/rest/v1/stats/errors.json").json()["result"]
    errors_week = api.get("/rest/v1/stats/errors/last7days.json").json()["result"]

    assert len(today) == 1
    assert today[0]["users"] == [{"userId": DEMO_USER, "count": 3}]
    assert len(week) == 7
    assert week[-1]["date"] == today[0]["date"]
    assert errors[0]["errors"] == [{"errorCode": "610", "count": 1}]
    assert len(errors_week) == 7


def test_seed_sets_limits():
    seed = default_seed()
    seed["daily_quota"] = 1
    seed["limits"] = {"rate_limit_calls": 50}
    server = start_sandbox(seed)
    try:
        assert server.state.limits.daily_quota == 1
        assert server.state.limits.rate_limit_calls == 50
        api = SandboxApi(server)
        api.get("/rest/v1/stats/usage.json")
        assert error_code(api.get("/rest/v1/stats/usage.json")) == "607"
    finally:
        server.stop()
