"""MarketoClient transport: tokens, retries by error class, reshaping and accounting."""

import json
import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.marketo.client import MarketoClient
from integrations.marketo.encoding import MAX_BODY_BYTES, normalize_base_url
from integrations.marketo.exceptions import (
    MarketoCredentialsError,
    MarketoOutcomeUnknownError,
    MarketoPayloadTooLargeError,
    MarketoPermissionError,
    MarketoQuotaExceededError,
    MarketoRateLimitError,
    MarketoRequestError,
    MarketoTokenError,
    MarketoTransientError,
)

from .conftest import BASE_URL, CLIENT_ID, CLIENT_SECRET, IDENTITY_URL, TOKEN
from .helpers import fail, filtered_message, ok, rest_calls

LEADS_URL = f"{BASE_URL}/rest/v1/leads.json"
ACTIVITIES_URL = f"{BASE_URL}/rest/v1/activities/external.json"


# --- Base URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://123-ABC-456.mktorest.com",
        "https://123-ABC-456.mktorest.com/",
        "https://123-abc-456.mktorest.com/rest",
        "https://123-ABC-456.mktorest.com/identity/",
    ],
    ids=["plain", "trailing-slash", "endpoint-value", "identity-value"],
)
def test_base_url_normalized(value):
    assert normalize_base_url(value) == "https://123-abc-456.mktorest.com"


@pytest.mark.parametrize(
    "value",
    ["123-ABC-456.mktorest.com", "ftp://x.example", "https://x.example/other", "https://u:p@x.example", ""],
    ids=["no-scheme", "wrong-scheme", "extra-path", "userinfo", "empty"],
)
def test_base_url_invalid_rejected(value):
    with pytest.raises(ValueError, match="Invalid Marketo base URL"):
        normalize_base_url(value)


def test_request_url_has_no_double_slash(marketo, make_client):
    client = make_client()
    client.base_url = normalize_base_url(BASE_URL + "/")
    marketo.get(f"{BASE_URL}/rest/v1/stats/usage.json", **ok([{"total": 1}]))

    client.get_daily_usage()

    assert "//rest" not in marketo.last_request.url


def test_rest_path_must_be_rest_without_query(client):
    with pytest.raises(ValueError, match="must start with /rest/"):
        client.request("GET", "/rest/v1/leads.json?filterType=email")
    with pytest.raises(ValueError, match="must start with /rest/"):
        client.request("GET", "v1/leads.json")


# --- Tokens --------------------------------------------------------------------


def test_token_fetched_once_and_sent_as_header(marketo, client):
    marketo.get(LEADS_URL, **ok())

    client.request("GET", "/rest/v1/leads.json", params={"filterType": "id", "filterValues": [1]})
    client.request("GET", "/rest/v1/leads.json", params={"filterType": "id", "filterValues": [2]})

    identity = [request for request in marketo.request_history if request.path == "/identity/oauth/token"]
    assert len(identity) == 1
    assert parse_qs(urlsplit(identity[0].url).query)["grant_type"] == ["client_credentials"]
    for request in rest_calls(marketo):
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "access_token" not in request.url


def test_token_shared_between_clients(marketo, make_client):
    marketo.get(LEADS_URL, **ok())

    make_client().request("GET", "/rest/v1/leads.json")
    make_client().request("GET", "/rest/v1/leads.json")

    assert marketo.request_history[0].path == "/identity/oauth/token"
    assert sum(request.path == "/identity/oauth/token" for request in marketo.request_history) == 1


def test_token_refetched_after_expiry(marketo, client, clock):
    marketo.get(LEADS_URL, **ok())

    client.request("GET", "/rest/v1/leads.json")
    clock.now += 3599 - 60 + 1
    client.request("GET", "/rest/v1/leads.json")

    assert sum(request.path == "/identity/oauth/token" for request in marketo.request_history) == 2


def test_token_with_seconds_left_is_used(marketo, client, clock):
    marketo.get(IDENTITY_URL, json={"access_token": TOKEN, "expires_in": 10})
    marketo.get(LEADS_URL, **ok())

    client.request("GET", "/rest/v1/leads.json")
    clock.now += 5
    client.request("GET", "/rest/v1/leads.json")

    assert sum(request.path == "/identity/oauth/token" for request in marketo.request_history) == 1


@pytest.mark.parametrize("code", ["601", "602"], ids=["invalid-601", "expired-602"])
def test_token_error_refreshes_once_and_retries(marketo, client, code):
    marketo.get(LEADS_URL, [fail(code, "Access token invalid"), ok([{"id": 1}])])

    envelope = client.request("GET", "/rest/v1/leads.json")

    assert envelope["result"] == [{"id": 1}]
    assert sum(request.path == "/identity/oauth/token" for request in marketo.request_history) == 2


def test_token_error_twice_raises(marketo, client):
    marketo.get(LEADS_URL, [fail("602"), fail("601")])

    with pytest.raises(MarketoTokenError) as raised:
        client.request("GET", "/rest/v1/leads.json")

    assert raised.value.code == "601"
    assert len(rest_calls(marketo)) == 2


def test_identity_401_raises_credentials_error(requests_mock, client):
    requests_mock.get(IDENTITY_URL, status_code=401, json={"error": "unauthorized"})

    with pytest.raises(MarketoCredentialsError, match="client id or client secret") as raised:
        client.request("GET", "/rest/v1/leads.json")

    assert raised.value.http_status == 401
    assert CLIENT_SECRET not in str(raised.value)


def test_identity_5xx_retried(requests_mock, client, clock):
    requests_mock.get(
        IDENTITY_URL,
        [{"status_code": 503, "text": "down"}, {"json": {"access_token": TOKEN, "expires_in": 3599}}],
    )
    requests_mock.get(LEADS_URL, **ok())

    client.request("GET", "/rest/v1/leads.json")

    assert len(clock.sleeps) == 1


# --- Request encoding -------------------------------------------------------------


def test_json_post_headers(marketo, client):
    marketo.post(LEADS_URL, **ok([{"id": 1, "status": "created"}]))

    client.sync_leads([{"email": "ada@example.org"}])

    request = marketo.last_request
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept-Encoding"] == "gzip"
    assert request.json() == {"action": "createOrUpdate", "lookupField": "email", "input": [{"email": "ada@example.org"}]}


def test_asset_create_is_form_encoded(marketo, client):
    marketo.post(f"{BASE_URL}/rest/asset/v1/programs.json", **ok([{"id": 2044, "name": "Docket Engagement"}]))

    program = client.create_program(
        "Docket Engagement", {"id": 1201, "type": "Folder"}, "Default", "Docket",
        description="Written by Docket", tags=[{"tagType": "Region", "tagValue": "EMEA"}],
    )

    request = marketo.last_request
    form = parse_qs(request.text)
    assert program["id"] == 2044
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert json.loads(form["folder"][0]) == {"id": 1201, "type": "Folder"}
    assert form["type"] == ["Default"]
    assert form["channel"] == ["Docket"]
    assert json.loads(form["tags"][0]) == [{"tagType": "Region", "tagValue": "EMEA"}]


def test_redirect_not_followed(marketo, client):
    marketo.get(LEADS_URL, status_code=302, headers={"Location": "https://elsewhere.example/rest?x=1"})

    with pytest.raises(MarketoRequestError, match="HTTP 302 to elsewhere.example") as raised:
        client.request("GET", "/rest/v1/leads.json")

    assert "x=1" not in str(raised.value)
    assert len(rest_calls(marketo)) == 1


def test_body_over_limit_raised_before_sending(marketo, client):
    records = [{"email": f"user{index}@example.org", "note": "x" * 4000} for index in range(280)]

    with pytest.raises(MarketoPayloadTooLargeError, match=f"{MAX_BODY_BYTES:,}"):
        client.sync_leads(records)

    assert rest_calls(marketo) == []


def test_http_413_raises_payload_too_large(marketo, client):
    marketo.post(LEADS_URL, status_code=413, text="too large")

    with pytest.raises(MarketoPayloadTooLargeError):
        client.sync_leads([{"email": "ada@example.org"}])

    assert len(rest_calls(marketo)) == 1


def test_http_414_resent_as_post_method_get(marketo, client):
    marketo.get(LEADS_URL, status_code=414, text="URI too long")
    marketo.post(LEADS_URL, **ok([{"id": 1, "email": "a@example.org"}]))

    leads = client.get_leads("email", ["a@example.org"], ["id", "email"])

    request = marketo.last_request
    assert leads == [{"id": 1, "email": "a@example.org"}]
    assert request.method == "POST"
    assert request.qs == {"_method": ["get"]}
    assert parse_qs(request.text)["filterValues"] == ["a@example.org"]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_long_get_sent_as_post_up_front(marketo, client):
    marketo.post(LEADS_URL, **ok())
    emails = [f"visitor-with-a-long-address-{index}@example.org" for index in range(300)]

    client.get_leads("email", emails, ["id"])

    assert [request.method for request in rest_calls(marketo)] == ["POST"]
    assert parse_qs(marketo.last_request.text)["filterValues"][0].split(",") == emails


# --- Retries by error class ---------------------------------------------------------


def test_606_waits_for_window_then_retries(marketo, client, clock):
    marketo.get(LEADS_URL, [fail("606", "Max rate limit '100' exceeded with in '20' secs"), ok()])

    client.request("GET", "/rest/v1/leads.json")

    # Full jitter with random() = 0.5 on a 1 s base, plus the 20 s window.
    assert clock.sleeps == [20.5]


def test_615_retries_with_backoff(marketo, client, clock):
    marketo.post(ACTIVITIES_URL, [fail("615"), fail("615"), ok([{"status": "added", "marketoGUID": "1"}])])

    results = client.add_custom_activities([{"leadId": 1}])

    assert results[0].ok
    assert clock.sleeps == [0.5, 1.0]


def test_rate_limit_exhausted_raises_with_wait(marketo, client):
    marketo.get(LEADS_URL, **fail("606"))

    with pytest.raises(MarketoRateLimitError) as raised:
        client.request("GET", "/rest/v1/leads.json")

    assert raised.value.retry_after_seconds == pytest.approx(22.0)
    assert len(rest_calls(marketo)) == 3


def test_607_raises_quota_at_once(marketo, client, clock):
    marketo.get(LEADS_URL, **fail("607", "Daily quota reached"))

    with pytest.raises(MarketoQuotaExceededError):
        client.request("GET", "/rest/v1/leads.json")

    assert len(rest_calls(marketo)) == 1
    assert clock.sleeps == []


def test_603_raises_permission_error(marketo, client):
    marketo.post(ACTIVITIES_URL, **fail("603", "Access denied"))

    with pytest.raises(MarketoPermissionError) as raised:
        client.add_custom_activities([{"leadId": 1}])

    assert raised.value.permission == "Read-Write Activity"
    assert raised.value.request_id == "r#2"
    assert len(rest_calls(marketo)) == 1


def test_702_returns_empty_result(marketo, client):
    marketo.get(f"{BASE_URL}/rest/asset/v1/program/2044.json", **fail("702", "No data found"))

    assert client.get_program(2044) is None


@pytest.mark.parametrize("code", ["604", "608", "611", "614", "713", "719"])
def test_transient_code_retried_when_idempotent(marketo, client, code):
    marketo.get(LEADS_URL, [fail(code), ok([{"id": 7}])])

    assert client.request("GET", "/rest/v1/leads.json")["result"] == [{"id": 7}]
    assert len(rest_calls(marketo)) == 2


@pytest.mark.parametrize("code", ["608", "611", "614", "713", "719"])
def test_not_executed_code_retried_when_not_idempotent(marketo, client, code):
    marketo.post(ACTIVITIES_URL, [fail(code), ok([{"status": "added", "marketoGUID": "9"}])])

    results = client.add_custom_activities([{"leadId": 1}])

    assert results[0].marketo_guid == "9"
    assert len(rest_calls(marketo)) == 2


def test_transient_exhausted_raises(marketo, client):
    marketo.get(LEADS_URL, **fail("608", "API temporarily unavailable"))

    with pytest.raises(MarketoTransientError) as raised:
        client.request("GET", "/rest/v1/leads.json")

    assert raised.value.code == "608"
    assert len(rest_calls(marketo)) == 3


@pytest.mark.parametrize(
    "answer",
    [
        fail("604", "Request timed out"),
        {"status_code": 502, "text": "Bad Gateway"},
        {"status_code": 500, "text": "error"},
        {"exc": requests.exceptions.ReadTimeout("read timed out")},
        {"exc": requests.exceptions.ConnectionError("Connection aborted.")},
    ],
    ids=["code-604", "http-502", "http-500", "read-timeout", "connection-dropped"],
)
def test_unclear_outcome_not_resent(marketo, client, answer):
    marketo.post(ACTIVITIES_URL, **answer)

    with pytest.raises(MarketoOutcomeUnknownError, match="is unknown .*it may have been applied"):
        client.add_custom_activities([{"leadId": 1}])

    assert len(rest_calls(marketo)) == 1


@pytest.mark.parametrize(
    "answer",
    [{"status_code": 502, "text": "Bad Gateway"}, {"exc": requests.exceptions.ReadTimeout("timed out")}],
    ids=["http-502", "read-timeout"],
)
def test_unclear_outcome_retried_when_idempotent(marketo, client, clock, answer):
    marketo.post(LEADS_URL, [answer, ok([{"id": 1, "status": "updated"}])])

    results = client.sync_leads([{"email": "ada@example.org"}])

    assert results[0].ok
    assert clock.sleeps == [0.5]


def test_5xx_exhausted_raises_transient(marketo, client):
    marketo.get(LEADS_URL, status_code=503, text="unavailable")

    with pytest.raises(MarketoTransientError, match="HTTP 503") as raised:
        client.request("GET", "/rest/v1/leads.json")

    assert not isinstance(raised.value, MarketoOutcomeUnknownError)
    assert len(rest_calls(marketo)) == 3


def test_non_json_body_retried(marketo, client):
    marketo.get(LEADS_URL, [{"text": "<html>maintenance</html>"}, ok([{"id": 3}])])

    assert client.request("GET", "/rest/v1/leads.json")["result"] == [{"id": 3}]


def test_request_wide_1003_raises_request_error(marketo, client):
    marketo.get(LEADS_URL, **fail("1003", "Too many results match the filter"))

    with pytest.raises(MarketoRequestError, match="1003"):
        client.request("GET", "/rest/v1/leads.json")

    assert len(rest_calls(marketo)) == 1


# --- Usage accounting and the limiter -------------------------------------------


def test_usage_recorded_per_rest_call(marketo, client, usage):
    marketo.get(LEADS_URL, [fail("602"), fail("606"), fail("604"), ok()])

    client.request("GET", "/rest/v1/leads.json")

    assert usage.calls == [
        ("/rest/v1/leads.json", "602", False),
        ("/rest/v1/leads.json", "606", True),
        ("/rest/v1/leads.json", "604", False),
        ("/rest/v1/leads.json", None, True),
    ]


def test_usage_counts_sent_failures(marketo, client, usage):
    marketo.post(ACTIVITIES_URL, exc=requests.exceptions.ReadTimeout("timed out"))

    with pytest.raises(MarketoOutcomeUnknownError):
        client.add_custom_activities([{"leadId": 1}])

    assert usage.calls == [("/rest/v1/activities/external.json", "timeout", True)]


def test_usage_recorder_failure_does_not_fail_call(marketo, make_client, caplog):
    def broken(path, code, counted):
        raise RuntimeError("database is down")

    marketo.get(LEADS_URL, **ok([{"id": 1}]))
    client = make_client(usage_recorder=broken)

    assert client.request("GET", "/rest/v1/leads.json")["result"] == [{"id": 1}]
    assert "Recording Marketo usage" in caplog.text


def test_limiter_slot_taken_per_rest_call(marketo, client, limiter):
    marketo.get(LEADS_URL, [fail("615"), ok()])

    client.request("GET", "/rest/v1/leads.json")

    assert limiter.slots == 2
    assert limiter.active == 0


# --- Logging ---------------------------------------------------------------------


def test_call_logged_with_path_code_and_request_id(marketo, client, caplog):
    marketo.get(LEADS_URL, **ok())
    caplog.set_level(logging.DEBUG, logger="integrations.marketo")

    client.request("GET", "/rest/v1/leads.json", params={"filterType": "email", "filterValues": ["ada@example.org"]})

    (line,) = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Marketo GET")]
    assert "/rest/v1/leads.json: ok (HTTP 200" in line
    assert "requestId r#1" in line
    assert "attempt 1" in line
    assert "ada@example.org" not in line


def test_logs_never_contain_secrets(marketo, client, caplog):
    marketo.get(LEADS_URL, [fail("606"), ok()])
    marketo.post(ACTIVITIES_URL, **fail("603", "Access denied"))
    caplog.set_level(logging.DEBUG)

    client.request("GET", "/rest/v1/leads.json", params={"filterType": "email", "filterValues": ["ada@example.org"]})
    with pytest.raises(MarketoPermissionError):
        client.add_custom_activities([{"leadId": 1}])

    # Our own records must be clean as logged; every record (requests-mock
    # logs full URLs) must be clean once the LOGGING filter has run.
    own = [record.getMessage() for record in caplog.records if record.name.startswith("integrations.")]
    assert any("Fetched a Marketo access token" in message for message in own)
    assert any("retrying" in message for message in own)
    assert any("/rest/v1/activities/external.json: 603" in message for message in own)
    for message in own:
        assert "?" not in message
        assert "ada@example.org" not in message
    for record in caplog.records:
        message = filtered_message(record)
        assert CLIENT_SECRET not in message
        assert CLIENT_ID not in message
        assert TOKEN not in message
        assert not re.search(r"\?(?!\[redacted\])", message)


def test_client_repr_hides_secret(client):
    assert CLIENT_SECRET not in repr(client)


def test_missing_credentials_rejected():
    with pytest.raises(ValueError, match="client id and client secret"):
        MarketoClient(BASE_URL, CLIENT_ID, "")
