"""Activity endpoints: activity types list, Add Custom Activities, paging token, read back."""

import base64
import json

from .errors import ApiError
from .timeutil import format_lead_datetime, parse_date, parse_datetime

MAX_BATCH = 300
MAX_ATTRIBUTE_BYTES = 65536
MAX_TYPE_IDS = 10
MAX_LEAD_IDS = 30


def list_activity_types(state, request) -> dict:
    """GET /rest/v1/activities/types.json: standard types, then approved custom types.

    Marketo does not mark which types are custom in this list.
    """
    # NOTE: standard types come from the seed's `standard_activity_types`;
    # the ids and attributes in the bundled demo seed are illustrative, not
    # copied from a Marketo instance.
    result = [dict(activity_type) for activity_type in state.standard_activity_types]
    for record in state.activity_types.values():
        version = record["approved"]
        if version is None:
            continue
        primary = version["primaryAttribute"]
        result.append({
            "id": record["id"],
            "apiName": record["apiName"],
            "name": version["name"],
            "description": version.get("description", ""),
            "primaryAttribute": {"apiName": primary["apiName"], "name": primary["name"], "dataType": primary["dataType"]},
            "attributes": [
                {"apiName": item["apiName"], "name": item["name"], "dataType": item["dataType"]}
                for item in version["attributes"]
            ],
        })
    return {"result": result}


def _record_error(code: str, message: str) -> dict:
    # Add Custom Activities reports per-record failures under `errors`, not `reasons`.
    return {"status": "skipped", "errors": [{"code": code, "message": message}]}


def _check_attribute_value(attribute: dict, value):
    """Return None if `value` fits the attribute's dataType, else a message."""
    data_type = attribute["dataType"]
    if isinstance(value, (dict, list)):
        return f"Invalid value for attribute '{attribute['apiName']}': a {data_type} cannot be an object or array"
    if data_type == "integer" and (isinstance(value, bool) or not (isinstance(value, int) or str(value).lstrip("-").isdigit())):
        return f"Invalid value {value!r} for attribute '{attribute['apiName']}' of type integer"
    if data_type in ("float", "currency"):
        try:
            if isinstance(value, bool):
                raise ValueError
            float(value)
        except (TypeError, ValueError):
            return f"Invalid value {value!r} for attribute '{attribute['apiName']}' of type {data_type}"
    if data_type == "boolean" and not (isinstance(value, bool) or str(value).lower() in ("true", "false")):
        return f"Invalid value {value!r} for attribute '{attribute['apiName']}' of type boolean"
    if data_type == "date" and not parse_date(value):
        return f"Invalid value {value!r} for attribute '{attribute['apiName']}'; use YYYY-MM-DD"
    if data_type == "datetime" and parse_datetime(value) is None:
        return f"Invalid value {value!r} for attribute '{attribute['apiName']}'; use ISO 8601 with an offset"
    return None


def _add_one(state, item, types_by_id: dict) -> dict:
    if not isinstance(item, dict):
        return _record_error("1003", "Input record must be a JSON object")

    type_id = item.get("activityTypeId")
    record = types_by_id.get(type_id) if isinstance(type_id, int) and not isinstance(type_id, bool) else None
    if record is None:
        return _record_error("1013", f"Activity type '{type_id}' not found")
    version = record["approved"]
    if version is None:
        return _record_error("1003", f"Activity type '{record['apiName']}' is not approved; approve it first")

    lead_id = item.get("leadId")
    if isinstance(lead_id, bool) or not isinstance(lead_id, int) or lead_id not in state.leads:
        return _record_error("1004", "Lead not found")

    activity_date = parse_datetime(item.get("activityDate"))
    if item.get("activityDate") in (None, ""):
        return _record_error("1002", "Value for required field 'activityDate' is missing")
    if activity_date is None:
        return _record_error("1001", f"Invalid activityDate {item.get('activityDate')!r}; use ISO 8601 with an offset")
    primary_value = item.get("primaryAttributeValue")
    if primary_value in (None, ""):
        return _record_error("1002", "Value for required field 'primaryAttributeValue' is missing")

    attributes = item.get("attributes")
    if attributes is None:
        return _record_error("1002", "Value for required field 'attributes' is missing")
    if not isinstance(attributes, list):
        return _record_error("1001", "attributes must be an array of {apiName, value}")
    # NOTE: an empty `attributes` array is accepted; Marketo does not document it.
    size = len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_ATTRIBUTE_BYTES:
        return _record_error("1049", f"Attributes are {size} bytes; the maximum is {MAX_ATTRIBUTE_BYTES}")

    by_api_name = {attribute["apiName"]: attribute for attribute in version["attributes"]}
    by_name = {attribute["name"]: attribute for attribute in version["attributes"]}
    stored = []
    for entry in attributes:
        key = entry.get("apiName") or entry.get("name") if isinstance(entry, dict) else None
        attribute = by_api_name.get(key) or by_name.get(key)
        if attribute is None:
            return _record_error("1006", f"Attribute '{key}' not found for activity type '{record['apiName']}'")
        problem = _check_attribute_value(attribute, entry.get("value"))
        if problem:
            return _record_error("1001", problem)
        stored.append({"apiName": attribute["apiName"], "name": attribute["name"], "value": entry.get("value")})

    activity_id = state.take_id("activity")
    state.activities.append({
        "id": activity_id,
        "marketoGUID": str(activity_id),
        "leadId": lead_id,
        "activityDate": activity_date,
        "activityTypeId": record["id"],
        "primaryAttributeValue": str(primary_value),
        "attributes": stored,
        "createdAt": state.now(),
    })
    return {"id": activity_id, "marketoGUID": str(activity_id), "status": "added"}


def add_activities(state, request) -> dict:
    body = request.json_body()
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON: the body must be an object with 'input'")
    items = body.get("input")
    if not isinstance(items, list):
        raise ApiError("701", "input cannot be blank; send a list of activities")
    if len(items) > MAX_BATCH:
        raise ApiError("1003", f"Batch of {len(items)} activities exceeds the maximum of {MAX_BATCH}")
    types_by_id = {record["id"]: record for record in state.activity_types.values()}
    return {"result": [_add_one(state, item, types_by_id) for item in items]}


def _encode_cursor(activity_date: float, activity_id: int) -> str:
    raw = f"{round(activity_date * 1000)}:{activity_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[float, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        millis, activity_id = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        return int(millis) / 1000, int(activity_id)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("1003", f"Invalid nextPageToken '{token}'; get one from /rest/v1/activities/pagingtoken.json") from None


def paging_token(state, request) -> dict:
    since_text = request.param("sinceDatetime")
    if not since_text:
        raise ApiError("701", "sinceDatetime cannot be blank")
    since = parse_datetime(since_text)
    if since is None:
        raise ApiError("704", f"Invalid date format '{since_text}'; use ISO 8601 such as 2026-05-04T00:00:00Z")
    return {"nextPageToken": _encode_cursor(since, 0), "no_result": True}


def _int_list(request, name: str, maximum: int) -> list[int]:
    values = request.list_param(name)
    if not all(value.lstrip("-").isdigit() for value in values):
        raise ApiError("1003", f"Parameter '{name}' must be comma-separated integers, got {values}")
    if len(values) > maximum:
        raise ApiError("1003", f"Parameter '{name}' has {len(values)} values; the maximum is {maximum}")
    return [int(value) for value in values]


def activity_output(activity: dict) -> dict:
    return {
        "id": activity["id"],
        "marketoGUID": activity["marketoGUID"],
        "leadId": activity["leadId"],
        "activityDate": format_lead_datetime(activity["activityDate"]),
        "activityTypeId": activity["activityTypeId"],
        "primaryAttributeValue": activity["primaryAttributeValue"],
        "attributes": [{"name": item["name"], "value": item["value"]} for item in activity["attributes"]],
    }


def get_activities(state, request) -> dict:
    """Get Lead Activities: those at or after the token's datetime, oldest first."""
    token = request.param("nextPageToken")
    if not token:
        raise ApiError("701", "nextPageToken cannot be blank; get one from /rest/v1/activities/pagingtoken.json")
    type_ids = _int_list(request, "activityTypeIds", MAX_TYPE_IDS)
    if not type_ids:
        raise ApiError("701", "activityTypeIds cannot be blank")
    lead_ids = _int_list(request, "leadIds", MAX_LEAD_IDS)
    batch_size = request.int_param("batchSize", MAX_BATCH)
    if not 1 <= batch_size <= MAX_BATCH:
        raise ApiError("1003", f"batchSize {batch_size} is out of range 1-{MAX_BATCH}")

    cursor = _decode_cursor(token)
    matching = sorted(
        (
            activity for activity in state.activities
            if activity["activityTypeId"] in type_ids
            and (not lead_ids or activity["leadId"] in lead_ids)
            and (round(activity["activityDate"] * 1000) / 1000, activity["id"]) > cursor
        ),
        key=lambda activity: (activity["activityDate"], activity["id"]),
    )
    page = matching[:batch_size]
    next_cursor = (page[-1]["activityDate"], page[-1]["id"]) if page else cursor
    return {
        "result": [activity_output(activity) for activity in page],
        "moreResult": len(matching) > batch_size,
        "nextPageToken": _encode_cursor(*next_cursor),
    }
