"""Fault injection and test-only operations under `/_sandbox/`.

Only loopback clients may call these (the HTTP layer checks), and none of
them counts against quota or rate. Bodies are JSON. Every response is JSON
with `ok` and either the result or an `error` naming the bad value.
"""

import copy
import threading

from .seed import SeedError, normalize_permission
from .seeding import normalize_attribute
from .variants import VARIANTS, validate_variants

FAULT_MODES = ("drop_before_apply", "drop_after_apply")


class ControlError(ValueError):
    """An invalid control request, returned as HTTP 400."""


class FaultList:
    """Pending faults: each fires on the next `count` matching calls, then disappears."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._next_id = 1

    def add(self, spec: dict) -> dict:
        fault = _validate_fault(spec)
        with self._lock:
            fault["id"] = self._next_id
            self._next_id += 1
            self._faults.append(fault)
            return dict(fault)

    def take(self, method: str, path: str) -> dict | None:
        """Return the first fault matching this call and use up one of its counts."""
        with self._lock:
            for fault in self._faults:
                if fault["method"] and fault["method"] != method:
                    continue
                matches = path.startswith(fault["path"]) if fault["match"] == "prefix" else path == fault["path"]
                if not matches:
                    continue
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    self._faults.remove(fault)
                return dict(fault)
            return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def describe(self) -> list[dict]:
        with self._lock:
            return [dict(fault) for fault in self._faults]


def _validate_fault(spec: dict) -> dict:
    if not isinstance(spec, dict):
        raise ControlError("A fault must be a JSON object.")
    path = spec.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ControlError(f"Fault 'path' must be a URL path starting with '/', got {path!r}.")
    match = spec.get("match", "exact")
    if match not in ("exact", "prefix"):
        raise ControlError(f"Fault 'match' must be 'exact' or 'prefix', got {match!r}.")
    count = spec.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ControlError(f"Fault 'count' must be a positive integer, got {count!r}.")

    code = spec.get("code")
    http_status = spec.get("http_status")
    mode = spec.get("mode")
    delay = spec.get("delay_seconds", 0)
    delay_after = spec.get("delay_after_apply_seconds", 0)
    if code is not None and not str(code).isdigit():
        raise ControlError(f"Fault 'code' must be a Marketo code such as '606', got {code!r}.")
    if http_status is not None and (not isinstance(http_status, int) or not 400 <= http_status <= 599):
        raise ControlError(f"Fault 'http_status' must be an HTTP error status (400-599), got {http_status!r}.")
    if mode is not None and mode not in FAULT_MODES:
        raise ControlError(f"Fault 'mode' must be one of {', '.join(FAULT_MODES)}, got {mode!r}.")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ControlError(f"Fault 'delay_seconds' must be a number of seconds >= 0, got {delay!r}.")
    if isinstance(delay_after, bool) or not isinstance(delay_after, (int, float)) or delay_after < 0:
        raise ControlError(
            f"Fault 'delay_after_apply_seconds' must be a number of seconds >= 0, got {delay_after!r}."
        )
    outcomes = [value for value in (code, http_status, mode) if value is not None]
    if len(outcomes) > 1:
        raise ControlError("A fault takes at most one of 'code', 'http_status' and 'mode'.")
    if delay_after and (code is not None or http_status is not None or mode == "drop_before_apply"):
        raise ControlError("'delay_after_apply_seconds' needs a fault that lets the endpoint apply the call.")
    if not outcomes and not delay and not delay_after:
        raise ControlError(
            "A fault needs 'code', 'http_status', 'mode', or a positive 'delay_seconds' or 'delay_after_apply_seconds'."
        )

    return {
        "path": path,
        "match": match,
        "method": spec.get("method", "").upper() or None,
        "count": count,
        "remaining": count,
        "code": str(code) if code is not None else None,
        "message": spec.get("message"),
        "http_status": http_status,
        "mode": mode,
        "delay_seconds": float(delay),
        # Applied, then delayed: the caller is still waiting after the
        # sandbox stored the write, the hardest moment for a worker to die.
        "delay_after_apply_seconds": float(delay_after),
    }


def _client(state, body: dict) -> dict:
    client_id = body.get("client_id")
    client = state.api_clients.get(client_id)
    if client is None:
        raise ControlError(f"Unknown client_id {client_id!r}; known: {', '.join(sorted(state.api_clients))}.")
    return client


def _int(body: dict, key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError(f"'{key}' must be an integer id, got {value!r}.")
    return value


def add_fault(state, body: dict) -> dict:
    return {"fault": state.faults.add(body)}


def clear_faults(state, body: dict) -> dict:
    state.faults.clear()
    return {}


def expire_tokens(state, body: dict) -> dict:
    """Expire every live token, or only those of `client_id`."""
    client_id = body.get("client_id")
    if client_id is not None:
        _client(state, body)
    now = state.now()
    expired = 0
    for token in state.tokens.values():
        if (client_id is None or token["client_id"] == client_id) and token["expires_at"] > now:
            token["expires_at"] = now
            expired += 1
    return {"expired": expired}


def set_permissions(state, body: dict) -> dict:
    """Replace a client's permissions, or `grant`/`revoke` some of them."""
    client = _client(state, body)
    try:
        if "permissions" in body:
            client["permissions"] = {normalize_permission(name) for name in body["permissions"]}
        for name in body.get("grant", []):
            client["permissions"].add(normalize_permission(name))
        for name in body.get("revoke", []):
            client["permissions"].discard(normalize_permission(name))
    except SeedError as error:
        raise ControlError(str(error)) from error
    return {"client_id": client["client_id"], "permissions": sorted(client["permissions"])}


def delete_program(state, body: dict) -> dict:
    """Delete a program and its memberships, as if an admin deleted it in the UI."""
    program_id = _int(body, "id")
    if state.programs.pop(program_id, None) is None:
        raise ControlError(f"Program {program_id} does not exist.")
    state.members.pop(program_id, None)
    return {"deleted": program_id}


def delete_lead(state, body: dict) -> dict:
    lead_id = _int(body, "id")
    if state.leads.pop(lead_id, None) is None:
        raise ControlError(f"Lead {lead_id} does not exist.")
    for members in state.members.values():
        members.pop(lead_id, None)
    for cookie in [cookie for cookie, owner in state.cookies.items() if owner == lead_id]:
        del state.cookies[cookie]
    return {"deleted": lead_id}


def add_activity_attribute(state, body: dict) -> dict:
    """Add an attribute to a custom type's live version, as an admin would in the UI and then approve."""
    api_name = body.get("apiName")
    record = state.activity_types.get(api_name)
    if record is None:
        raise ControlError(f"Custom activity type {api_name!r} does not exist.")
    try:
        attribute = normalize_attribute(body.get("attribute") or {}, f"type {api_name!r}")
    except SeedError as error:
        raise ControlError(str(error)) from error
    for version in (record["approved"], record["draft"]):
        if version is None:
            continue
        existing = {item["apiName"] for item in version["attributes"]} | {version["primaryAttribute"]["apiName"]}
        if attribute["apiName"] in existing:
            raise ControlError(f"Type {api_name!r} already has attribute {attribute['apiName']!r}.")
        version["attributes"].append(dict(attribute))
    if record["approved"] is None:
        record["approved"] = copy.deepcopy(record["draft"])
        record["draft"] = None
    record["updatedAt"] = state.now()
    return {"apiName": api_name, "attribute": attribute}


def merge_leads(state, body: dict) -> dict:
    """Merge losers into the winner: the losers' ids stop existing and their data moves."""
    from .leads import merge_into

    winner = _int(body, "winner")
    losers = body.get("losers") or ([body["loser"]] if "loser" in body else [])
    if not losers or not all(isinstance(loser, int) and not isinstance(loser, bool) for loser in losers):
        raise ControlError("Send 'loser' (an id) or 'losers' (a list of ids).")
    missing = [lead_id for lead_id in [winner, *losers] if lead_id not in state.leads]
    if missing or winner in losers:
        raise ControlError(f"Leads {missing or [winner]} do not exist or the winner is also a loser.")
    merge_into(state, winner, losers)
    return {"winner": winner, "merged": losers}


def set_limits(state, body: dict) -> dict:
    problems = state.limits.update(body)
    if problems:
        raise ControlError(" ".join(problems))
    return {"limits": state.limits.as_dict()}


def set_variants(state, body: dict) -> dict:
    problems = validate_variants(body)
    if problems:
        raise ControlError(" ".join(problems))
    state.variants.update(body)
    return {"variants": dict(state.variants)}


def get_variants(state, body: dict) -> dict:
    return {"variants": dict(state.variants), "choices": {name: list(choices) for name, choices in VARIANTS.items()}}


def reset(state, body: dict) -> dict:
    try:
        state.reset(body.get("seed"))
    except SeedError as error:
        raise ControlError(str(error)) from error
    return {}


def get_state(state, body: dict) -> dict:
    return {"state": state.dump()}


CONTROL_ROUTES = {
    ("POST", "faults"): add_fault,
    ("POST", "faults/clear"): clear_faults,
    ("GET", "faults"): lambda state, body: {"faults": state.faults.describe()},
    ("POST", "expire_tokens"): expire_tokens,
    ("POST", "permissions"): set_permissions,
    ("POST", "delete_program"): delete_program,
    ("POST", "delete_lead"): delete_lead,
    ("POST", "add_activity_attribute"): add_activity_attribute,
    ("POST", "merge_leads"): merge_leads,
    ("POST", "set_limits"): set_limits,
    ("GET", "variants"): get_variants,
    ("POST", "variants"): set_variants,
    ("POST", "reset"): reset,
    ("GET", "state"): get_state,
}
