"""Code-to-error mapping, 603 permission messages and per-record result parsing."""

import pytest

from integrations.marketo.exceptions import (
    ERROR_CLASSES,
    MarketoError,
    MarketoInvalidCookieError,
    MarketoOutcomeUnknownError,
    MarketoPermissionError,
    MarketoQuotaExceededError,
    MarketoRateLimitError,
    MarketoRequestError,
    MarketoTokenError,
    MarketoTransientError,
    Reason,
    error_for,
    parse_record_results,
    required_permission,
)

# One row per mapped code: the action class in Marketo's error table decides the type.
MAPPING = [
    ("601", MarketoTokenError),
    ("602", MarketoTokenError),
    ("603", MarketoPermissionError),
    ("604", MarketoTransientError),
    ("605", MarketoRequestError),
    ("606", MarketoRateLimitError),
    ("607", MarketoQuotaExceededError),
    ("608", MarketoTransientError),
    ("609", MarketoRequestError),
    ("610", MarketoRequestError),
    ("611", MarketoTransientError),
    ("612", MarketoRequestError),
    ("613", MarketoRequestError),
    ("614", MarketoTransientError),
    ("615", MarketoRateLimitError),
    ("616", MarketoRequestError),
    ("701", MarketoRequestError),
    ("703", MarketoRequestError),
    ("704", MarketoRequestError),
    ("709", MarketoRequestError),
    ("710", MarketoRequestError),
    ("711", MarketoRequestError),
    ("712", MarketoRequestError),
    ("713", MarketoTransientError),
    ("714", MarketoRequestError),
    ("718", MarketoRequestError),
    ("719", MarketoTransientError),
    ("1012", MarketoInvalidCookieError),
]


@pytest.mark.parametrize("code, expected", MAPPING, ids=[f"code-{code}" for code, _ in MAPPING])
def test_error_for_maps_code(code, expected):
    error = error_for(code, "message from Marketo", path="/rest/v1/leads.json", request_id="r#1")

    assert type(error) is expected
    assert error.code == code
    assert error.path == "/rest/v1/leads.json"
    assert error.request_id == "r#1"


def test_mapping_table_has_a_test_row_per_code():
    assert set(ERROR_CLASSES) == {code for code, _ in MAPPING}


@pytest.mark.parametrize(
    "code, expected",
    [("1003", MarketoRequestError), ("1025", MarketoRequestError), ("999", MarketoError), (None, MarketoError)],
    ids=["request-wide-1003", "request-wide-1025", "unknown-code", "no-code"],
)
def test_error_for_falls_back_by_range(code, expected):
    assert type(error_for(code, "x")) is expected


def test_error_for_accepts_integer_codes():
    assert error_for(606, "x").code == "606"


def test_error_message_names_code_path_and_advice():
    error = error_for("607", "Daily quota reached", path="/rest/v1/leads.json")

    assert "607" in str(error)
    assert "/rest/v1/leads.json" in str(error)
    assert "midnight US Central" in str(error)


PERMISSIONS = [
    ("POST", "/rest/v1/activities/external.json", "Read-Write Activity"),
    ("GET", "/rest/v1/activities/types.json", "Read-Write Activity"),
    ("GET", "/rest/v1/activities.json", "Read-Write Activity"),
    ("GET", "/rest/v1/activities/external/types.json", "Read-Write Activity Metadata"),
    ("POST", "/rest/v1/activities/external/type.json", "Read-Write Activity Metadata"),
    ("POST", "/rest/v1/activities/external/type/docketConversation/approve.json", "Read-Write Activity Metadata"),
    ("GET", "/rest/v1/activities/external/type/docketConversation/describe.json", "Read-Write Activity Metadata"),
    ("POST", "/rest/v1/leads.json", "Read-Write Person"),
    ("GET", "/rest/v1/leads/describe2.json", "Read-Write Person"),
    ("POST", "/rest/v1/leads/4012/associate.json", "Read-Write Person"),
    ("GET", "/rest/v1/lead/4012.json", "Read-Write Person"),
    ("POST", "/rest/v1/programs/2044/members/status.json", "Read-Write Person"),
    ("GET", "/rest/v1/programs/members/describe.json", "Read-Write Person"),
    ("GET", "/rest/v1/leads/4012/programMembership.json", "Read-Only Assets"),
    ("GET", "/rest/asset/v1/channels.json", "Read-Only Assets"),
    ("GET", "/rest/asset/v1/folder/byName.json", "Read-Only Assets"),
    ("POST", "/rest/asset/v1/folders.json", "Read-Write Assets"),
    ("POST", "/rest/asset/v1/programs.json", "Read-Write Assets"),
    ("GET", "/rest/v1/stats/usage.json", None),
]


@pytest.mark.parametrize("method, path, permission", PERMISSIONS, ids=[f"{m} {p}" for m, p, _ in PERMISSIONS])
def test_required_permission_by_endpoint(method, path, permission):
    assert required_permission(method, path) == permission


def test_permission_error_names_permission_and_allowlist():
    error = error_for("603", "Access denied", method="POST", path="/rest/v1/activities/external.json")

    assert isinstance(error, MarketoPermissionError)
    assert error.permission == "Read-Write Activity"
    assert '"Read-Write Activity"' in str(error)
    assert "IP allowlist" in str(error)


def test_permission_error_without_permission_blames_allowlist():
    error = error_for("603", "Access denied", method="GET", path="/rest/v1/stats/usage.json")

    assert error.permission is None
    assert "IP allowlist" in str(error)
    assert "needs no role permission" in str(error)


def test_record_results_read_every_reason_shape():
    results = parse_record_results(
        [
            {"id": 4012, "status": "updated"},
            {"status": "skipped", "reasons": [{"code": "1007", "message": "Multiple leads match"}]},
            {"status": "skipped", "reason": {"code": "1006", "message": "Field not found"}},
            {"status": "skipped", "errors": [{"code": "1004", "message": "Lead not found"}]},
            {"id": 88120331, "marketoGUID": "88120331", "status": "added"},
        ]
    )

    assert [result.index for result in results] == [0, 1, 2, 3, 4]
    assert results[0].ok and results[0].id == 4012
    assert results[1].skipped and results[1].reasons == [Reason("1007", "Multiple leads match")]
    assert results[2].reasons == [Reason("1006", "Field not found")]
    assert results[3].reasons == [Reason("1004", "Lead not found")]
    assert results[3].has_reason(1004)
    assert results[4].marketo_guid == "88120331"
    assert results[4].ok


def test_record_results_correlate_by_seq():
    results = parse_record_results(
        [
            {"seq": 2, "status": "skipped", "reasons": [{"code": "1037", "message": "already in status"}]},
            {"seq": 0, "status": "created", "leadId": 4012},
            {"seq": 1, "status": "updated", "leadId": 4013},
        ]
    )

    assert [result.index for result in results] == [0, 1, 2]
    assert [result.status for result in results] == ["created", "updated", "skipped"]
    assert results[2].raw["seq"] == 2


@pytest.mark.parametrize("status, ok", [("created", True), ("updated", True), ("added", True),
                                         ("deleted", True), ("skipped", False), ("", False)])
def test_record_result_ok_by_status(status, ok):
    (result,) = parse_record_results([{"status": status}])

    assert result.ok is ok


def test_record_results_count_mismatch_is_unknown_outcome():
    with pytest.raises(MarketoOutcomeUnknownError, match="2 results for a batch of 3"):
        parse_record_results([{"status": "added"}, {"status": "added"}], expected=3)
