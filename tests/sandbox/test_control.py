"""The /_sandbox/ control endpoint: faults, tokens, permissions, data changes, limits, variants."""

import pytest
import requests

from integrations.marketo.sandbox import server as server_module
from tests.sandbox.test_activities import activity, approved_type
from tests.sandbox.test_members import docket_program, set_status

USAGE = "/rest/v1/stats/usage.json"


def test_fault_marketo_code_for_next_calls(sandbox, api):
    api.control("faults", {"path": USAGE, "code": "604", "count": 2})
    codes = []
    for _ in range(3):
        errors = api.get(USAGE).json()["errors"]
        codes.append(errors[0]["code"] if errors else None)

    assert codes == ["604", "604", None]
    # 604 is a starred code, so the two failed calls were not counted.
    assert sandbox.state.calls_today() == 1


def test_fault_http_status_and_prefix(sandbox, api):
    api.control("faults", {"path": "/rest/v1/leads", "match": "prefix", "http_status": 502})
    response = api.get("/rest/v1/leads/describe2.json")

    assert response.status_code == 502
    assert "text/html" in response.headers["Content-Type"]
    assert api.get("/rest/v1/leads/describe2.json").status_code == 200


def test_fault_drop_after_apply_still_writes(sandbox, api):
    api.authenticate()
    api.control("faults", {"path": "/rest/v1/leads.json", "method": "POST", "mode": "drop_after_apply"})
    with pytest.raises(requests.ConnectionError):
        api.post_json("/rest/v1/leads.json", {"input": [{"email": "dropped@example.test"}]})

    assert len(sandbox.state.find_leads("dropped@example.test")) == 1


def test_fault_drop_before_apply_writes_nothing(sandbox, api):
    api.authenticate()
    api.control("faults", {"path": "/rest/v1/leads.json", "method": "POST", "mode": "drop_before_apply"})
    with pytest.raises(requests.ConnectionError):
        api.post_json("/rest/v1/leads.json", {"input": [{"email": "never@example.test"}]})

    assert sandbox.state.find_leads("never@example.test") == []


def test_fault_on_identity(sandbox, api):
    api.control("faults", {"path": "/identity/oauth/token", "http_status": 503})
    assert api.fetch_token().status_code == 503
    assert api.fetch_token().status_code == 200


def test_fault_validation_and_listing(sandbox, api):
    bad = requests.post(f"{sandbox.url}/_sandbox/faults", json={"path": USAGE, "code": "606", "mode": "drop_after_apply"}, timeout=5)
    api.control("faults", {"path": USAGE, "delay_seconds": 0.01, "count": 3})
    listed = requests.get(f"{sandbox.url}/_sandbox/faults", timeout=5).json()["faults"]
    api.control("faults/clear")

    assert bad.status_code == 400
    assert "at most one" in bad.json()["error"]
    assert listed[0]["remaining"] == 3
    assert sandbox.state.faults.describe() == []


def test_expire_tokens(sandbox, api):
    api.authenticate()
    assert api.control("expire_tokens")["expired"] == 1
    assert api.get(USAGE).json()["errors"][0]["code"] == "602"


def test_revoke_permission(sandbox, api):
    api.control("permissions", {"client_id": "docket-demo-client", "revoke": ["Read-Write Assets"]})
    folder_create = api.post_form("/rest/asset/v1/folders.json", {"name": "X", "parent": '{"id":10,"type":"Folder"}'}).json()
    channels = api.get("/rest/asset/v1/channels.json").json()
    unknown = requests.post(f"{sandbox.url}/_sandbox/permissions", json={"client_id": "docket-demo-client", "grant": ["Admin"]}, timeout=5)

    assert folder_create["errors"][0]["code"] == "603"
    assert channels["success"] is True
    assert unknown.status_code == 400


def test_delete_program(sandbox, api):
    program_id = docket_program(api)
    api.control("delete_program", {"id": program_id})

    assert api.get(f"/rest/asset/v1/program/{program_id}.json").json()["warnings"]
    assert requests.post(f"{sandbox.url}/_sandbox/delete_program", json={"id": program_id}, timeout=5).status_code == 400


def test_add_activity_attribute_by_hand(sandbox, api):
    type_id = approved_type(api)
    api.control("add_activity_attribute", {"apiName": "docketConversation", "attribute": {"apiName": "region", "name": "Region", "dataType": "string"}})
    live = api.get("/rest/v1/activities/external/type/docketConversation/describe.json").json()["result"][0]
    added = api.post_json("/rest/v1/activities/external.json", {"input": [activity(type_id, attributes=[{"apiName": "region", "value": "EMEA"}])]}).json()

    assert live["status"] == "approved"
    assert "region" in {item["apiName"] for item in live["attributes"]}
    assert added["result"][0]["status"] == "added"


def test_merge_leads_moves_activities(sandbox, api):
    type_id = approved_type(api)
    program_id = docket_program(api)
    api.post_json("/rest/v1/activities/external.json", {"input": [activity(type_id, lead_id=1002)]})
    set_status(api, program_id, "Engaged", [1002])
    api.control("merge_leads", {"winner": 1001, "loser": 1002})

    after = api.post_json("/rest/v1/activities/external.json", {"input": [activity(type_id, lead_id=1002)]}).json()
    assert after["result"][0]["errors"][0]["code"] == "1004"
    assert sandbox.state.lead(1002) is None
    assert len(sandbox.state.activities_for(1001)) == 1
    assert sandbox.state.member(program_id, 1001)["statusName"] == "Engaged"


def test_delete_lead(sandbox, api):
    api.control("delete_lead", {"id": 1001})
    assert api.get("/rest/v1/leads.json", {"filterType": "id", "filterValues": "1001"}).json()["result"] == []


def test_set_limits_at_run_time(sandbox, api):
    api.control("set_limits", {"daily_quota": 1})
    api.get(USAGE)
    bad = requests.post(f"{sandbox.url}/_sandbox/set_limits", json={"daily_quota": -1}, timeout=5)

    assert api.get(USAGE).json()["errors"][0]["code"] == "607"
    assert bad.status_code == 400


def test_variants_listing_and_validation(sandbox, api):
    listed = requests.get(f"{sandbox.url}/_sandbox/variants", timeout=5).json()
    bad_value = requests.post(f"{sandbox.url}/_sandbox/variants", json={"duplicate_program": "999"}, timeout=5)
    bad_name = requests.post(f"{sandbox.url}/_sandbox/variants", json={"nope": "x"}, timeout=5)

    assert listed["variants"]["duplicate_program"] == "709"
    assert "611" in listed["choices"]["duplicate_program"]
    assert bad_value.status_code == 400
    assert bad_name.status_code == 400


def test_reset_restores_seed(sandbox, api):
    api.post_json("/rest/v1/leads.json", {"input": [{"email": "temp@example.test"}]})
    api.control("variants", {"duplicate_program": "611"})
    api.control("reset")

    assert sandbox.state.find_leads("temp@example.test") == []
    assert sandbox.state.variants["duplicate_program"] == "709"
    assert sandbox.state.calls_today() == 0


def test_state_dump(sandbox, api):
    type_id = approved_type(api)
    program_id = docket_program(api)
    api.post_json("/rest/v1/activities/external.json", {"input": [activity(type_id)]})
    set_status(api, program_id, "Engaged", [1001])
    dump = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).json()["state"]

    assert dump["activities"][0]["attributes"][0]["apiName"] == "agentName"
    assert dump["program_members"][0]["statusName"] == "Engaged"
    assert dump["activity_types"][0]["apiName"] == "docketConversation"
    assert dump["usage"]["calls_today_by_user"]["docket-api@corvane.example"] > 0
    assert "/rest/v1/activities/external.json" in dump["usage"]["calls_by_path"]
    assert "client_secret" not in str(dump["api_clients"])


def test_control_rejects_non_loopback(sandbox, monkeypatch):
    monkeypatch.setattr(server_module, "LOOPBACK", ("192.0.2.1",))
    response = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5)

    assert response.status_code == 403


def test_control_unknown_operation(sandbox):
    response = requests.post(f"{sandbox.url}/_sandbox/explode", json={}, timeout=5)

    assert response.status_code == 404
    assert "POST /_sandbox/faults" in response.json()["known"]
