"""Endpoint methods: parameters, paging, chunking and result shapes."""

from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from integrations.marketo.exceptions import MarketoInvalidCookieError, MarketoOutcomeUnknownError

from .conftest import BASE_URL
from .helpers import fail, ok, rest_calls


def test_browse_channels_pages_by_offset(marketo, client):
    first_page = [{"id": index} for index in range(200)]
    marketo.get(f"{BASE_URL}/rest/asset/v1/channels.json", [ok(first_page), ok([{"id": 200}])])

    channels = client.browse_channels()

    assert len(channels) == 201
    assert [request.qs["offset"] for request in rest_calls(marketo)] == [["0"], ["200"]]
    assert rest_calls(marketo)[0].qs["maxreturn"] == ["200"]


def test_browse_stops_on_no_assets_warning(marketo, client):
    marketo.get(
        f"{BASE_URL}/rest/asset/v1/programs.json",
        json={"success": True, "warnings": ["No assets found for the given search criteria."], "requestId": "x"},
    )

    assert client.browse_programs() == []


def test_channel_by_name_sends_name(marketo, client):
    marketo.get(f"{BASE_URL}/rest/asset/v1/channel/byName.json", **ok([{"id": 31, "name": "Docket Chat"}]))

    channel = client.get_channel_by_name("Docket Chat")

    assert channel["id"] == 31
    assert "name=Docket+Chat" in marketo.last_request.url


def test_channel_by_name_missing_returns_none(marketo, client):
    marketo.get(
        f"{BASE_URL}/rest/asset/v1/channel/byName.json",
        json={"success": True, "warnings": ["No assets found for the given search criteria."]},
    )

    assert client.get_channel_by_name("Nope") is None


def test_folder_by_name_sends_root_as_json(marketo, client):
    marketo.get(f"{BASE_URL}/rest/asset/v1/folder/byName.json", **ok([{"id": 1}, {"id": 2}]))

    folders = client.get_folder_by_name("Docket", root={"id": 15, "type": "Folder"})

    assert len(folders) == 2
    assert marketo.last_request.qs["root"] == ['{"id":15,"type":"folder"}']
    assert marketo.last_request.qs["type"] == ["folder"]


def test_create_folder_form(marketo, client):
    marketo.post(f"{BASE_URL}/rest/asset/v1/folders.json", **ok([{"id": 1201, "name": "Docket"}]))

    folder = client.create_folder("Docket", {"id": 15, "type": "Folder"}, "Created by Docket")

    form = parse_qs(marketo.last_request.text)
    assert folder["id"] == 1201
    assert form["parent"] == ['{"id":15,"type":"Folder"}']
    assert form["description"] == ["Created by Docket"]


@pytest.mark.parametrize(
    "answer",
    [
        fail("610", "Requested resource not found"),
        fail("702", "No data found"),
        {"json": {"success": True, "warnings": ["No assets found for the given search criteria."]}},
    ],
    ids=["code-610", "code-702", "no-assets-warning"],
)
def test_get_program_missing_returns_none(marketo, client, answer):
    marketo.get(f"{BASE_URL}/rest/asset/v1/program/2044.json", **answer)

    assert client.get_program(2044) is None


def test_describe_leads_returns_fields(marketo, client):
    marketo.get(
        f"{BASE_URL}/rest/v1/leads/describe2.json",
        **ok([{"name": "API Lead", "fields": [{"name": "email", "dataType": "email"}]}]),
    )

    assert client.describe_leads() == [{"name": "email", "dataType": "email"}]


def test_get_leads_follows_next_page_token(marketo, client):
    marketo.get(
        f"{BASE_URL}/rest/v1/leads.json",
        [ok([{"id": 1}], moreResult=True, nextPageToken="PAGE2"), ok([{"id": 2}], moreResult=False)],
    )

    leads = client.get_leads("email", ["a@example.org"], ["id", "email"])

    assert leads == [{"id": 1}, {"id": 2}]
    assert rest_calls(marketo)[1].qs["nextpagetoken"] == ["page2"]
    assert rest_calls(marketo)[0].qs["fields"] == ["id,email"]


def test_get_leads_rejects_over_300_values(client):
    with pytest.raises(ValueError, match="301, Marketo accepts at most 300"):
        client.get_leads("id", range(301), ["id"])


def test_sync_leads_results_in_input_order(marketo, client):
    marketo.post(
        f"{BASE_URL}/rest/v1/leads.json",
        **ok([{"id": 4012, "status": "updated"},
              {"status": "skipped", "reasons": [{"code": "1007", "message": "Multiple leads match"}]}]),
    )

    results = client.sync_leads([{"email": "a@example.org"}, {"email": "dup@example.org"}])

    assert [result.index for result in results] == [0, 1]
    assert results[0].id == 4012
    assert results[1].has_reason("1007")


def test_associate_lead_encodes_cookie(marketo, client):
    marketo.post(f"{BASE_URL}/rest/v1/leads/4012/associate.json", json={"requestId": "r", "success": True})

    client.associate_lead(4012, "id:123-ABC-456&token:_mch-example.com-1714836130000-48213")

    assert "cookie=id%3A123-ABC-456%26token%3A_mch-example.com-1714836130000-48213" in marketo.last_request.url
    assert marketo.last_request.headers["Content-Type"] == "application/json"


def test_associate_lead_invalid_cookie(marketo, client):
    marketo.post(f"{BASE_URL}/rest/v1/leads/4012/associate.json", **fail("1012", "Invalid cookie value"))

    with pytest.raises(MarketoInvalidCookieError):
        client.associate_lead(4012, "garbage")


def test_describe_custom_activity_type_draft(marketo, client):
    url = f"{BASE_URL}/rest/v1/activities/external/type/docketConversation/describe.json"
    marketo.get(url, **ok([{"apiName": "docketConversation", "status": "draft"}]))

    described = client.describe_custom_activity_type("docketConversation", draft=True)

    assert described["status"] == "draft"
    assert marketo.last_request.qs["draft"] == ["true"]


def test_custom_activity_type_api_name_validated(client):
    with pytest.raises(ValueError, match="letters and digits only"):
        client.approve_custom_activity_type("../leads")


def test_delete_attributes_body(marketo, client):
    url = f"{BASE_URL}/rest/v1/activities/external/type/docketConversation/attributes/delete.json"
    marketo.post(url, **ok([{"apiName": "docketConversation", "status": "approved with draft"}]))

    client.delete_custom_activity_attributes("docketConversation", ["utmSource", "clickId"])

    assert marketo.last_request.json() == {"attributes": [{"apiName": "utmSource"}, {"apiName": "clickId"}]}


def test_add_custom_activities_parses_errors(marketo, client):
    marketo.post(
        f"{BASE_URL}/rest/v1/activities/external.json",
        **ok([{"id": 88120331, "marketoGUID": "88120331", "status": "added"},
              {"status": "skipped", "errors": [{"code": "1004", "message": "Lead not found"}]}]),
    )

    results = client.add_custom_activities([{"leadId": 4012}, {"leadId": 999999}])

    assert results[0].marketo_guid == "88120331"
    assert results[1].has_reason("1004")


def test_add_custom_activities_count_mismatch(marketo, client):
    marketo.post(f"{BASE_URL}/rest/v1/activities/external.json", **ok([{"status": "added"}]))

    with pytest.raises(MarketoOutcomeUnknownError):
        client.add_custom_activities([{"leadId": 1}, {"leadId": 2}])


def test_lead_activities_chunk_lead_ids_by_30(marketo, client):
    marketo.get(f"{BASE_URL}/rest/v1/activities/pagingtoken.json", json={"success": True, "nextPageToken": "START"})
    marketo.get(
        f"{BASE_URL}/rest/v1/activities.json",
        [
            ok([{"id": 1}], moreResult=True, nextPageToken="NEXT"),
            ok([{"id": 2}], moreResult=False, nextPageToken="END"),
            ok([{"id": 3}], moreResult=False, nextPageToken="END"),
        ],
    )

    activities = client.get_lead_activities([100001], range(1, 46), datetime(2026, 5, 4, 15, 22, tzinfo=UTC))

    calls = [request for request in rest_calls(marketo) if request.path == "/rest/v1/activities.json"]
    assert activities == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [len(call.qs["leadids"][0].split(",")) for call in calls] == [30, 30, 15]
    assert [call.qs["nextpagetoken"] for call in calls] == [["start"], ["next"], ["start"]]
    assert rest_calls(marketo)[0].qs["sincedatetime"] == ["2026-05-04t15:22:00+00:00"]


def test_paging_token_needs_aware_datetime(client):
    with pytest.raises(ValueError, match="aware datetime"):
        client.get_paging_token(datetime(2026, 5, 4))


def test_program_members_chunk_by_300(marketo, client):
    marketo.get(f"{BASE_URL}/rest/v1/programs/2044/members.json", **ok([{"leadId": 1, "statusName": "Engaged"}]))

    members = client.get_program_members(2044, range(1, 302))

    calls = rest_calls(marketo)
    assert len(members) == 2
    assert [len(call.qs["filtervalues"][0].split(",")) for call in calls] == [300, 1]
    assert calls[0].qs["filtertype"] == ["leadid"]
    assert calls[0].qs["fields"] == ["leadid,statusname"]


def test_member_status_results_by_seq(marketo, client):
    marketo.post(
        f"{BASE_URL}/rest/v1/programs/2044/members/status.json",
        **ok([{"seq": 1, "status": "updated", "leadId": 4013},
              {"seq": 0, "status": "created", "leadId": 4012},
              {"seq": 2, "status": "skipped", "reasons": [{"code": "1037", "message": "already in status"}]}]),
    )

    results = client.sync_program_member_status(2044, "Engaged", [4012, 4013, 4014])

    assert marketo.last_request.json() == {
        "statusName": "Engaged", "input": [{"leadId": 4012}, {"leadId": 4013}, {"leadId": 4014}],
    }
    assert [result.raw.get("leadId") for result in results] == [4012, 4013, None]
    assert results[2].has_reason("1037")


def test_member_status_not_resent_on_timeout(marketo, client):
    marketo.post(f"{BASE_URL}/rest/v1/programs/2044/members/status.json", **fail("604", "Request timed out"))

    with pytest.raises(MarketoOutcomeUnknownError):
        client.sync_program_member_status(2044, "Engaged", [4012])

    assert len(rest_calls(marketo)) == 1


def test_usage_endpoints(marketo, client):
    marketo.get(f"{BASE_URL}/rest/v1/stats/usage.json", **ok([{"date": "2026-05-04", "total": 812}]))
    marketo.get(f"{BASE_URL}/rest/v1/stats/usage/last7days.json", **ok([{"total": 1}] * 7))

    assert client.get_daily_usage()[0]["total"] == 812
    assert len(client.get_usage_last_7_days()) == 7
