"""Lead endpoints: describe, get by filter, Sync Leads, associate cookie, merge."""

import re

from .errors import ApiError, reason, skipped
from .seed import STANDARD_LEAD_FIELD_NAMES
from .timeutil import format_lead_datetime, parse_date, parse_datetime

MAX_BATCH = 300
MAX_FILTER_MATCHES = 1000
DEFAULT_FIELDS = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")
SYNC_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
STRING_TYPES = ("string", "email", "phone", "url")
# Marketo's text area fields hold 30,000 bytes of UTF-8.
TEXT_MAX_BYTES = 30000

# The `_mkto_trk` cookie value: id:<munchkin id>&token:_mch-<domain>-<digits>-<digits>.
# The domain may itself contain hyphens, so the two numeric parts anchor the end.
COOKIE_PATTERN = re.compile(r"^id:\d{3}-[A-Z]{3}-\d{3}&token:_mch-[A-Za-z0-9.\-]+-\d+-\d+$")


def searchable_fields(state) -> list[str]:
    """Return the fields `filterType` and `lookupField` accept.

    Marketo accepts `email`, `id`, `cookies` and custom fields of type string,
    email or integer; standard fields such as firstName are rejected with 1011.
    """
    custom = [
        name for name, field in state.lead_fields.items()
        if name not in STANDARD_LEAD_FIELD_NAMES and field["dataType"] in ("string", "email", "integer")
    ]
    return ["email", "id", "cookies", *custom]


def describe2(state, request) -> dict:
    fields = [
        {**field, "crmManaged": False}
        for field in state.lead_fields.values()
    ]
    return {"result": [{"name": "API Lead", "searchableFields": [[name] for name in searchable_fields(state)], "fields": fields}]}


def describe(state, request) -> dict:
    result = []
    for index, field in enumerate(state.lead_fields.values(), start=1):
        entry = {"id": index, "displayName": field["displayName"], "dataType": field["dataType"]}
        if "length" in field:
            entry["length"] = field["length"]
        read_only = not field["updateable"]
        entry["rest"] = {"name": field["name"], "readOnly": read_only}
        entry["soap"] = {"name": field["name"], "readOnly": read_only}
        result.append(entry)
    return {"result": result}


def lead_output(state, record: dict, fields) -> dict:
    """Format a lead for a response: `id` always, requested fields only when not null."""
    output = {"id": record["id"]}
    for name in fields:
        if name == "id":
            continue
        if name in ("createdAt", "updatedAt"):
            output[name] = format_lead_datetime(record[name])
        elif record["values"].get(name) is not None:
            output[name] = record["values"][name]
    return output


def _matches(state, record: dict, filter_type: str, values: list[str]) -> bool:
    if filter_type == "id":
        return str(record["id"]) in values
    if filter_type == "cookies":
        return any(state.cookies.get(value) == record["id"] for value in values)
    current = record["values"].get(filter_type)
    if current is None:
        return False
    if filter_type == "email":
        # NOTE: Marketo does not document whether email matching ignores case;
        # the sandbox matches email case-insensitively and other fields exactly.
        return str(current).lower() in {value.lower() for value in values}
    return str(current) in values


def get_leads(state, request) -> dict:
    """Get Leads by Filter Type, with `nextPageToken` paging."""
    filter_type = request.param("filterType")
    values = request.list_param("filterValues")
    if not filter_type:
        raise ApiError("701", "filterType cannot be blank")
    if not values:
        raise ApiError("701", "filterValues cannot be blank")
    if filter_type not in searchable_fields(state):
        if filter_type in state.lead_fields:
            raise ApiError("1011", f"Field '{filter_type}' not supported for filter")
        raise ApiError("1006", f"Field '{filter_type}' not found")
    if len(values) > MAX_BATCH:
        raise ApiError("1003", f"filterValues has {len(values)} values; the maximum is {MAX_BATCH}")

    fields = request.list_param("fields") or list(DEFAULT_FIELDS)
    unknown = [name for name in fields if name not in state.lead_fields]
    if unknown:
        raise ApiError("1006", f"Field '{unknown[0]}' not found")
    batch_size = request.int_param("batchSize", MAX_BATCH)
    if not 1 <= batch_size <= MAX_BATCH:
        raise ApiError("1003", f"batchSize {batch_size} is out of range 1-{MAX_BATCH}")

    if filter_type == "email":
        found = {record["id"]: record for value in values for record in state.leads_with_email(value)}
        matches = [found[lead_id] for lead_id in sorted(found)]
    else:
        matches = [record for record in state.leads.values() if _matches(state, record, filter_type, values)]
    if len(matches) > MAX_FILTER_MATCHES:
        raise ApiError("1003", "Too many results match the filter")

    offset = _decode_offset(request.param("nextPageToken"))
    page = matches[offset:offset + batch_size]
    response = {"result": [lead_output(state, record, fields) for record in page]}
    if offset + batch_size < len(matches):
        response["moreResult"] = True
        response["nextPageToken"] = _encode_offset(offset + batch_size)
    return response


def _encode_offset(offset: int) -> str:
    return f"LEADS{offset:08d}"


def _decode_offset(token: str | None) -> int:
    if not token:
        return 0
    if not (token.startswith("LEADS") and token[5:].isdigit()):
        raise ApiError("1003", f"Invalid nextPageToken {token!r}")
    return int(token[5:])


def get_lead(state, request) -> dict:
    """Get Lead by Id: at most one record, at result[0]."""
    record = state.leads.get(int(request.path_params["lead_id"]))
    fields = request.list_param("fields") or list(DEFAULT_FIELDS)
    return {"result": [lead_output(state, record, fields)] if record else []}


def _check_value(field: dict, value):
    """Return `(value, None)` if `value` fits the field, else `(None, reason)`."""
    name, data_type = field["name"], field["dataType"]
    if value is None:
        return None, None
    if isinstance(value, (dict, list)):
        return None, reason("1001", f"Invalid value for field '{name}': a {data_type} cannot be an object or array")

    if data_type in STRING_TYPES or data_type == "text":
        if isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        if data_type == "email" and not text.isascii():
            # Marketo accepts only ASCII email addresses on create and update.
            # It does not document the code; 1003 ("data not valid") is used.
            return None, reason("1003", f"Invalid value for field '{name}': email addresses must be ASCII")
        if data_type == "text" and len(text.encode("utf-8")) > TEXT_MAX_BYTES:
            return None, reason("1001", f"Invalid value for field '{name}': longer than {TEXT_MAX_BYTES} bytes")
        # NOTE: Marketo does not document whether it truncates or rejects an
        # over-long string. The sandbox rejects it, so a client that forgot to
        # cut values fails here.
        if data_type != "text" and len(text) > field.get("length", 255):
            return None, reason("1001", f"Invalid value for field '{name}': longer than {field.get('length', 255)} characters")
        return text, None

    if data_type in ("integer", "score", "reference"):
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())):
            return None, reason("1001", f"Invalid value {value!r} for field '{name}' of type integer")
        return int(value), None
    if data_type in ("float", "currency", "percent"):
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value), None
        except (TypeError, ValueError):
            return None, reason("1001", f"Invalid value {value!r} for field '{name}' of type {data_type}")
    if data_type == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", None
        return None, reason("1001", f"Invalid value {value!r} for field '{name}' of type boolean")
    if data_type == "date" and not parse_date(value):
        return None, reason("1001", f"Invalid value {value!r} for field '{name}'; use YYYY-MM-DD")
    if data_type == "datetime" and parse_datetime(value) is None:
        return None, reason("1001", f"Invalid value {value!r} for field '{name}'; use ISO 8601 with an offset")
    return value, None


def _validate_record(state, record: dict, action: str):
    """Return `(values, None)` with checked field values, or `(None, reason)`."""
    values = {}
    for name, value in record.items():
        field = state.lead_fields.get(name)
        if field is None:
            return None, reason("1006", f"Field '{name}' not found")
        if name == "id":
            if action != "updateOnly":
                return None, reason("1003", "Field 'id' is only allowed with action updateOnly")
            continue
        if not field["updateable"]:
            return None, reason("1003", f"Field '{name}' is read-only")
        checked, problem = _check_value(field, value)
        if problem:
            return None, problem
        values[name] = checked
    return values, None


def _find(state, lookup_field: str, value) -> list[dict]:
    if lookup_field == "id":
        record = state.leads.get(int(value)) if str(value).isdigit() else None
        return [record] if record else []
    if lookup_field == "email":
        return state.leads_with_email(str(value))
    return [record for record in state.leads.values() if _matches(state, record, lookup_field, [str(value)])]


def _create(state, values: dict) -> dict:
    now = state.now()
    lead_id = state.take_id("lead")
    state.leads[lead_id] = {"id": lead_id, "values": values, "createdAt": now, "updatedAt": now}
    state.index_lead(state.leads[lead_id])
    return {"id": lead_id, "status": "created"}


def _update(state, record: dict, values: dict) -> dict:
    record["values"].update(values)
    record["updatedAt"] = state.now()
    state.index_lead(record)
    return {"id": record["id"], "status": "updated"}


def _sync_one(state, record, action: str, lookup_field: str) -> dict:
    if not isinstance(record, dict):
        return skipped("1003", "Input record must be a JSON object")
    values, problem = _validate_record(state, record, action)
    if problem:
        return {"status": "skipped", "reasons": [problem]}

    if action == "createDuplicate":
        return _create(state, values)

    key_field = "id" if action == "updateOnly" and "id" in record else lookup_field
    key = record.get(key_field)
    if key in (None, ""):
        if action == "createOnly":
            return _create(state, values)
        return skipped("1002", f"Value for lookup field '{key_field}' is missing")
    matches = _find(state, key_field, key)

    if action == "createOnly":
        if matches:
            return skipped("1005", "Lead already exists")
        return _create(state, values)
    if len(matches) > 1:
        return skipped("1007", "Multiple leads match the lookup criteria")
    if not matches:
        if action == "updateOnly":
            return skipped("1004", "Lead not found")
        return _create(state, values)
    return _update(state, matches[0], values)


def sync_leads(state, request) -> dict:
    """Sync Leads: results in input order, without `seq`."""
    body = request.json_body()
    if not isinstance(body, dict):
        raise ApiError("609", "Invalid JSON: the body must be an object with 'input'")
    records = body.get("input")
    if not isinstance(records, list):
        raise ApiError("701", "input cannot be blank; send a list of lead records")
    if len(records) > MAX_BATCH:
        raise ApiError("1003", f"Batch of {len(records)} records exceeds the maximum of {MAX_BATCH}")
    action = body.get("action") or "createOrUpdate"
    if action not in SYNC_ACTIONS:
        raise ApiError("1003", f"Invalid action '{action}'; use one of {', '.join(SYNC_ACTIONS)}")
    lookup_field = body.get("lookupField") or "email"
    if lookup_field not in state.lead_fields:
        raise ApiError("1006", f"Field '{lookup_field}' not found")
    if lookup_field not in searchable_fields(state) or lookup_field == "cookies":
        raise ApiError("1011", f"Field '{lookup_field}' not supported for lookup")

    return {"result": [_sync_one(state, record, action, lookup_field) for record in records]}


def associate(state, request) -> dict:
    """Associate Lead: link a Munchkin cookie to a lead. The response has no `result`."""
    lead_id = int(request.path_params["lead_id"])
    cookie = request.param("cookie")
    if not cookie:
        raise ApiError("701", "cookie cannot be blank")
    if lead_id not in state.leads:
        raise ApiError("1004", f"Lead '{lead_id}' not found")
    if not COOKIE_PATTERN.match(cookie):
        raise ApiError("1012", f"Invalid cookie value '{cookie}'")
    # NOTE: the cookie's Munchkin id is not compared with this instance's,
    # because Marketo does not document that check.
    state.cookies[cookie] = lead_id
    return {"no_result": True}


def merge_into(state, winner_id: int, loser_ids: list[int]) -> None:
    """Merge leads: the winner keeps its values unless empty; everything else moves to it."""
    winner = state.leads[winner_id]
    for loser_id in loser_ids:
        loser = state.leads.pop(loser_id)
        for name, value in loser["values"].items():
            if winner["values"].get(name) in (None, "") and value not in (None, ""):
                winner["values"][name] = value
        for activity in state.activities:
            if activity["leadId"] == loser_id:
                activity["leadId"] = winner_id
        for cookie, owner in list(state.cookies.items()):
            if owner == loser_id:
                state.cookies[cookie] = winner_id
        for members in state.members.values():
            membership = members.pop(loser_id, None)
            if membership and (winner_id not in members or members[winner_id]["step"] < membership["step"]):
                members[winner_id] = membership
        state.merged_into[loser_id] = winner_id
    winner["updatedAt"] = state.now()
    state.index_lead(winner)


def merge(state, request) -> dict:
    """Merge Leads: the path id wins; `leadId` or up to 25 `leadIds` lose."""
    winner_id = int(request.path_params["lead_id"])
    raw = request.list_param("leadIds") or request.list_param("leadId")
    if not raw:
        raise ApiError("701", "leadId cannot be blank")
    if len(raw) > 25:
        raise ApiError("1080", f"Merge takes at most 25 leadIds, got {len(raw)}")
    if not all(item.isdigit() for item in raw):
        raise ApiError("1003", f"Invalid leadIds {raw}")
    losers = [int(item) for item in raw]
    missing = [lead_id for lead_id in [winner_id, *losers] if lead_id not in state.leads]
    if missing:
        raise ApiError("1004", f"Lead '{missing[0]}' not found")
    merge_into(state, winner_id, [lead_id for lead_id in losers if lead_id != winner_id])
    return {"no_result": True}
