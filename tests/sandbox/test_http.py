"""HTTP-level behaviour: 413, 414, 612, 609, 605, 610, gzip, and the access log."""

import logging

import requests

from tests.sandbox.fixtures import DEMO_CLIENT_SECRET, SandboxApi, start_sandbox


def test_body_over_1mb_gives_413(sandbox, api):
    body = b'{"input": [' + b" " * (1024 * 1024) + b"]}"
    response = api.post("/rest/v1/leads.json", data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert sandbox.state.calls_today() == 0


def test_uri_over_8kb_gives_414(sandbox, api):
    values = ",".join(f"visitor{index}@example.test" for index in range(400))
    too_long = api.get("/rest/v1/leads.json", params={"filterType": "email", "filterValues": values})

    assert too_long.status_code == 414
    assert sandbox.state.calls_today() == 0


def test_post_method_override_reads_form(sandbox, api):
    short_values = ",".join(f"visitor{index}@example.test" for index in range(250)) + ",samir.haddad@fabrikam.example"
    override = api.post(
        "/rest/v1/leads.json",
        params={"_method": "GET"},
        data={"filterType": "email", "filterValues": short_values, "fields": "email,company"},
    )
    assert override.status_code == 200
    assert override.json()["result"] == [{"id": 1002, "email": "samir.haddad@fabrikam.example", "company": "Fabrikam"}]


def test_json_post_needs_json_content_type(sandbox, api):
    form = api.post("/rest/v1/leads.json", data={"input": "x"})
    broken = api.post("/rest/v1/leads.json", data=b"{not json", headers={"Content-Type": "application/json"})

    assert form.json()["errors"][0]["code"] == "612"
    assert broken.json()["errors"][0]["code"] == "609"


def test_wrong_method_605_and_unknown_path_610(sandbox, api):
    wrong_method = api.get("/rest/v1/activities/external.json")
    unknown = api.get("/rest/v1/nothing/here.json")

    assert wrong_method.status_code == 200
    assert wrong_method.json()["errors"][0]["code"] == "605"
    assert unknown.json()["errors"][0] == {"code": "610", "message": "Requested resource not found"}
    # 605 is a starred code and does not count; 610 does.
    assert sandbox.state.calls_today() == 1


def test_gzip_when_accepted(sandbox, api):
    response = api.get("/rest/v1/leads/describe2.json", headers={"Accept-Encoding": "gzip"})

    assert response.headers["Content-Encoding"] == "gzip"
    assert response.json()["result"][0]["name"] == "API Lead"


def test_access_log_has_no_query_string(caplog):
    sandbox = start_sandbox(access_log=True)
    api = SandboxApi(sandbox)
    try:
        with caplog.at_level(logging.DEBUG, logger="integrations.marketo.sandbox"):
            api.authenticate()
            api.get("/rest/v1/leads.json", params={"filterType": "email", "filterValues": "secret-person@example.test"})
            requests.get(f"{sandbox.url}/identity/oauth/token?grant_type=client_credentials&client_id=x&client_secret=bad", timeout=5)
            requests.get(f"{sandbox.url}/nowhere?client_secret={DEMO_CLIENT_SECRET}", timeout=5)
            requests.get(f"{sandbox.url}/rest/v1/x.json?client_secret={DEMO_CLIENT_SECRET}" + "a" * 9000, timeout=5)
    finally:
        sandbox.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert any("/identity/oauth/token 200" in message for message in messages)
    assert any("/identity/oauth/token 401" in message for message in messages)
    assert any("/rest/v1/x.json 414" in message for message in messages)
    for message in messages:
        assert "?" not in message
        assert DEMO_CLIENT_SECRET not in message
        assert "client_secret" not in message
        assert "secret-person" not in message
        assert api.token not in message
