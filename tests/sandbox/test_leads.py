"""Lead endpoints: describe, Get Leads by Filter Type, Sync Leads, associate cookie."""

from tests.sandbox.fixtures import demo_seed_with, start_sandbox, SandboxApi
from integrations.marketo.sandbox.seed import default_seed

COOKIE = "id:417-QWE-902&token:_mch-corvane.example-1714836130000-48213"


def test_describe_lists_standard_and_custom_fields(sandbox, api):
    fields = {field["name"]: field for field in api.get("/rest/v1/leads/describe2.json").json()["result"][0]["fields"]}
    legacy = api.get("/rest/v1/leads/describe.json").json()["result"]

    assert fields["email"]["dataType"] == "email"
    assert fields["docketSummary"]["dataType"] == "text"
    assert fields["id"]["updateable"] is False
    assert fields["latestTouchUtmSource"]["length"] == 255
    assert {entry["rest"]["name"] for entry in legacy} >= {"email", "firstTouchUtmSource"}


def test_sync_creates_and_updates_in_input_order(sandbox, api):
    response = api.post_json("/rest/v1/leads.json", {
        "input": [
            {"email": "new.visitor@example.test", "firstName": "New"},
            {"email": "Samir.Haddad@fabrikam.example", "title": "CIO", "latestTouchUtmSource": "google"},
            {"email": "other@example.test", "favouriteColour": "blue"},
        ],
    }).json()

    created, updated, unknown_field = response["result"]
    assert created["status"] == "created"
    assert isinstance(created["id"], int)
    assert updated == {"id": 1002, "status": "updated"}
    assert unknown_field["status"] == "skipped"
    assert unknown_field["reasons"][0]["code"] == "1006"
    assert all("seq" not in item for item in response["result"])
    assert sandbox.state.lead(1002)["title"] == "CIO"
    assert sandbox.state.find_leads("other@example.test") == []


def test_sync_duplicate_email_gives_1007():
    seed = default_seed()
    seed["leads"] += [{"email": "twin@example.test"}, {"email": "TWIN@example.test"}]
    server = start_sandbox(seed)
    try:
        result = SandboxApi(server).post_json("/rest/v1/leads.json", {"input": [{"email": "twin@example.test", "title": "x"}]}).json()
        assert result["result"][0]["reasons"][0]["code"] == "1007"
    finally:
        server.stop()


def test_sync_actions_and_value_checks():
    seed = demo_seed_with()
    seed["lead_fields"].append({"name": "employeeCount", "displayName": "Employees", "dataType": "integer"})
    server = start_sandbox(seed)
    try:
        api = SandboxApi(server)
        create_only = api.post_json("/rest/v1/leads.json", {"action": "createOnly", "input": [{"email": "samir.haddad@fabrikam.example"}]}).json()
        update_only = api.post_json("/rest/v1/leads.json", {"action": "updateOnly", "input": [{"email": "ghost@example.test"}]}).json()
        id_with_create = api.post_json("/rest/v1/leads.json", {"action": "createOnly", "input": [{"id": 1001, "email": "a@example.test"}]}).json()
        non_ascii = api.post_json("/rest/v1/leads.json", {"input": [{"email": "zoë@example.test"}]}).json()
        wrong_type = api.post_json("/rest/v1/leads.json", {"input": [{"email": "n@example.test", "employeeCount": "many"}]}).json()
        too_long = api.post_json("/rest/v1/leads.json", {"input": [{"email": "l@example.test", "lastClickId": "x" * 256}]}).json()
        duplicate = api.post_json("/rest/v1/leads.json", {"action": "createDuplicate", "input": [{"email": "samir.haddad@fabrikam.example"}]}).json()
        bad_lookup = api.post_json("/rest/v1/leads.json", {"lookupField": "firstName", "input": [{"firstName": "Sam"}]}).json()

        assert create_only["result"][0]["reasons"][0]["code"] == "1005"
        assert update_only["result"][0]["reasons"][0]["code"] == "1004"
        assert id_with_create["result"][0]["reasons"][0]["code"] == "1003"
        assert non_ascii["result"][0]["reasons"][0]["code"] == "1003"
        assert wrong_type["result"][0]["reasons"][0]["code"] == "1001"
        assert too_long["result"][0]["reasons"][0]["code"] == "1001"
        assert duplicate["result"][0]["status"] == "created"
        assert len(server.state.find_leads("samir.haddad@fabrikam.example")) == 2
        assert bad_lookup["errors"][0]["code"] == "1011"
    finally:
        server.stop()


def test_sync_batch_of_301_gives_1003(sandbox, api):
    records = [{"email": f"bulk{index}@example.test"} for index in range(301)]
    response = api.post_json("/rest/v1/leads.json", {"input": records}).json()

    assert response["success"] is False
    assert response["errors"][0]["code"] == "1003"
    assert sandbox.state.find_leads("bulk0@example.test") == []


def test_get_leads_filters_and_omits_nulls(sandbox, api):
    api.post_json("/rest/v1/leads.json", {"input": [{"email": "utm@example.test", "latestTouchUtmSource": "linkedin"}]})
    by_email = api.get("/rest/v1/leads.json", {"filterType": "email", "filterValues": "utm@example.test", "fields": "email,firstName,latestTouchUtmSource"}).json()
    by_custom = api.get("/rest/v1/leads.json", {"filterType": "latestTouchUtmSource", "filterValues": "linkedin"}).json()
    no_match = api.get("/rest/v1/leads.json", {"filterType": "email", "filterValues": "nobody@example.test"}).json()
    not_searchable = api.get("/rest/v1/leads.json", {"filterType": "firstName", "filterValues": "Dana"}).json()
    too_many = api.get("/rest/v1/leads.json", {"filterType": "id", "filterValues": ",".join(str(n) for n in range(301))}).json()

    assert by_email["result"][0]["latestTouchUtmSource"] == "linkedin"
    assert "firstName" not in by_email["result"][0]
    assert by_custom["result"][0]["email"] == "utm@example.test"
    assert no_match["success"] is True
    assert no_match["result"] == []
    assert not_searchable["errors"][0]["code"] == "1011"
    assert too_many["errors"][0]["code"] == "1003"


def test_get_leads_pages_with_next_page_token():
    seed = default_seed()
    seed["leads"] = [{"email": f"page{index}@example.test", "lastCampaign": "spring"} for index in range(5)]
    server = start_sandbox(seed)
    try:
        api = SandboxApi(server)
        first = api.get("/rest/v1/leads.json", {"filterType": "lastCampaign", "filterValues": "spring", "batchSize": 3}).json()
        second = api.get("/rest/v1/leads.json", {"filterType": "lastCampaign", "filterValues": "spring", "batchSize": 3,
                                                 "nextPageToken": first["nextPageToken"]}).json()
        assert len(first["result"]) == 3
        assert first["moreResult"] is True
        assert len(second["result"]) == 2
        assert "moreResult" not in second
    finally:
        server.stop()


def test_associate_cookie_valid_and_invalid(sandbox, api):
    valid = api.post("/rest/v1/leads/1001/associate.json", params={"cookie": COOKIE}).json()
    invalid = api.post("/rest/v1/leads/1001/associate.json", params={"cookie": "not-a-cookie"}).json()
    unknown_lead = api.post("/rest/v1/leads/999999/associate.json", params={"cookie": COOKIE}).json()
    found = api.get("/rest/v1/leads.json", {"filterType": "cookies", "filterValues": COOKIE}).json()

    assert valid == {"requestId": valid["requestId"], "success": True}
    assert invalid["errors"][0]["code"] == "1012"
    assert unknown_lead["errors"][0]["code"] == "1004"
    assert found["result"][0]["id"] == 1001
    assert sandbox.state.lead(1001)["cookies"] == [COOKIE]


def test_merge_endpoint_moves_cookie_and_values(sandbox, api):
    api.post("/rest/v1/leads/1002/associate.json", params={"cookie": COOKIE})
    merged = api.post("/rest/v1/leads/1001/merge.json", params={"leadId": 1002}).json()
    too_many = api.post("/rest/v1/leads/1001/merge.json", params={"leadIds": ",".join(str(n) for n in range(2000, 2026))}).json()

    assert merged["success"] is True
    assert sandbox.state.lead(1002) is None
    assert sandbox.state.lead(1001)["cookies"] == [COOKIE]
    assert too_many["errors"][0]["code"] == "1080"
