"""Marketo REST endpoints used by the writeback, as methods on MarketoClient.

Each method builds one endpoint's request, pages or chunks where Marketo
caps a call, and returns plain dicts and lists, or RecordResults for batch
writes. Transport, retries and errors live in `client.py`.
"""

from datetime import datetime
from urllib.parse import quote

from integrations.marketo.exceptions import (
    MarketoRequestError,
    RecordResult,
    parse_record_results,
)

MAX_BATCH_RECORDS = 300  # Sync Leads, Add Custom Activities, member status, filterValues
MAX_ACTIVITY_LEAD_IDS = 30  # leadIds per Get Lead Activities call
MAX_ACTIVITY_TYPE_IDS = 10  # activityTypeIds per Get Lead Activities call
ASSET_PAGE_SIZE = 200  # maxReturn cap of Asset API browse calls


class MarketoEndpointsMixin:
    """Endpoint methods; the class using it provides `request(method, path, ...)`."""

    # --- Usage ---------------------------------------------------------------

    def get_daily_usage(self) -> list[dict]:
        return _result(self.request("GET", "/rest/v1/stats/usage.json"))

    def get_usage_last_7_days(self) -> list[dict]:
        return _result(self.request("GET", "/rest/v1/stats/usage/last7days.json"))

    # --- Channels, folders, programs, tags (Asset API) -----------------------

    def browse_channels(self) -> list[dict]:
        return self._browse_assets("/rest/asset/v1/channels.json")

    def get_channel_by_name(self, name: str) -> dict | None:
        # Marketo's docs name the parameter `name`; the OpenAPI spec says `Name`.
        return _first(self.request("GET", "/rest/asset/v1/channel/byName.json", params={"name": name}))

    def get_folder_by_name(self, name: str, *, root: dict | None = None, folder_type: str = "Folder") -> list[dict]:
        """Return every folder with exactly this name (names may repeat), optionally under `root`."""
        params = {"name": name, "type": folder_type, "root": root}
        return _result(self.request("GET", "/rest/asset/v1/folder/byName.json", params=params))

    def create_folder(self, name: str, parent: dict, description: str = "") -> dict:
        # Not idempotent: a resend after a lost response could create a second
        # folder with the same name, since Marketo allows duplicate folder names.
        form = {"name": name, "parent": parent, "description": description or None}
        envelope = self.request("POST", "/rest/asset/v1/folders.json", form=form, idempotent=False)
        return _single(envelope, "create folder")

    def get_program_by_name(self, name: str) -> dict | None:
        return _first(self.request("GET", "/rest/asset/v1/program/byName.json", params={"name": name}))

    def get_program(self, program_id: int) -> dict | None:
        """Return the program, or None when Marketo reports it missing (no-assets warning, 702 or 610)."""
        path = f"/rest/asset/v1/program/{int(program_id)}.json"
        try:
            return _first(self.request("GET", path))
        except MarketoRequestError as error:
            if error.code == "610":
                return None
            raise

    def browse_programs(self) -> list[dict]:
        return self._browse_assets("/rest/asset/v1/programs.json")

    def create_program(
        self, name: str, folder: dict, program_type: str, channel: str, description: str = "", tags=None
    ) -> dict:
        form = {
            "name": name,
            "folder": folder,
            "type": program_type,
            "channel": channel,
            "description": description or None,
            "tags": list(tags) if tags else None,
        }
        envelope = self.request("POST", "/rest/asset/v1/programs.json", form=form, idempotent=False)
        return _single(envelope, "create program")

    def get_tag_types(self) -> list[dict]:
        return self._browse_assets("/rest/asset/v1/tagTypes.json")

    def _browse_assets(self, path: str) -> list[dict]:
        """Page an Asset API browse call with offset and maxReturn until a short page."""
        items = []
        offset = 0
        while True:
            page = _result(self.request("GET", path, params={"maxReturn": ASSET_PAGE_SIZE, "offset": offset}))
            items.extend(page)
            if len(page) < ASSET_PAGE_SIZE:
                return items
            offset += len(page)

    # --- Leads ---------------------------------------------------------------

    def describe_leads(self) -> list[dict]:
        """Return the lead fields from Describe2: name, displayName, dataType, length, updateable."""
        described = _first(self.request("GET", "/rest/v1/leads/describe2.json"))
        return list((described or {}).get("fields") or [])

    def get_leads(self, filter_type: str, values, fields) -> list[dict]:
        """Return the leads whose `filter_type` field matches one of `values` (at most 300)."""
        values = [str(value) for value in values]
        _check_batch("filter values", values, MAX_BATCH_RECORDS)
        if not values:
            return []
        params = {"filterType": filter_type, "filterValues": values, "fields": list(fields)}
        return self._follow_pages("/rest/v1/leads.json", params)

    def sync_leads(self, records: list[dict], *, action="createOrUpdate", lookup_field="email") -> list[RecordResult]:
        """Create or update up to 300 leads; results come back in input order."""
        _check_batch("leads", records, MAX_BATCH_RECORDS)
        if not records:
            return []
        body = {"action": action, "lookupField": lookup_field, "input": list(records)}
        envelope = self.request("POST", "/rest/v1/leads.json", json=body)
        return parse_record_results(envelope.get("result"), expected=len(records))

    def associate_lead(self, lead_id: int, cookie: str) -> None:
        """Link a Munchkin cookie's (`_mkto_trk`) anonymous activity to the lead.

        Raises MarketoInvalidCookieError (1012) when Marketo rejects the cookie.
        """
        if not cookie:
            raise ValueError(f"A Munchkin cookie value is required to associate lead {lead_id}.")
        # The cookie goes in the query string; urlencode turns its ':' and '&' into %3A and %26.
        self.request("POST", f"/rest/v1/leads/{int(lead_id)}/associate.json", params={"cookie": cookie})

    # --- Activity types and activities ---------------------------------------

    def list_activity_types(self) -> list[dict]:
        return _result(self.request("GET", "/rest/v1/activities/types.json"))

    def list_custom_activity_types(self) -> list[dict]:
        return _result(self.request("GET", "/rest/v1/activities/external/types.json"))

    def describe_custom_activity_type(self, api_name: str, *, draft: bool = False) -> dict | None:
        """Return the approved version of the type (or its draft), or None when Marketo has none."""
        params = {"draft": True} if draft else None
        envelope = self.request("GET", f"{_type_path(api_name)}/describe.json", params=params)
        return _first(envelope)

    def create_custom_activity_type(self, payload: dict) -> dict:
        # Not idempotent: after a lost response a resend fails on the apiName
        # that the first call created, so the caller looks the type up instead.
        envelope = self.request(
            "POST", "/rest/v1/activities/external/type.json", json=payload, idempotent=False
        )
        return _single(envelope, "create custom activity type")

    def update_custom_activity_type(self, api_name: str, payload: dict) -> dict:
        envelope = self.request("POST", f"{_type_path(api_name)}.json", json=payload)
        return _single(envelope, "update custom activity type")

    def create_custom_activity_attributes(self, api_name: str, attributes: list[dict]) -> dict:
        envelope = self.request(
            "POST",
            f"{_type_path(api_name)}/attributes/create.json",
            json={"attributes": list(attributes)},
            idempotent=False,
        )
        return _single(envelope, "create custom activity attributes")

    def delete_custom_activity_attributes(self, api_name: str, api_names: list[str]) -> dict:
        body = {"attributes": [{"apiName": name} for name in api_names]}
        envelope = self.request("POST", f"{_type_path(api_name)}/attributes/delete.json", json=body)
        return _single(envelope, "delete custom activity attributes")

    def approve_custom_activity_type(self, api_name: str) -> dict:
        envelope = self.request("POST", f"{_type_path(api_name)}/approve.json")
        return _single(envelope, "approve custom activity type")

    def discard_custom_activity_type_draft(self, api_name: str) -> dict:
        envelope = self.request("POST", f"{_type_path(api_name)}/discardDraft.json")
        return _single(envelope, "discard custom activity type draft")

    def add_custom_activities(self, activities: list[dict]) -> list[RecordResult]:
        """Add up to 300 custom activities.

        Marketo has no idempotency key for activities, so this call is never
        resent automatically: a lost response raises MarketoOutcomeUnknownError.
        """
        _check_batch("activities", activities, MAX_BATCH_RECORDS)
        if not activities:
            return []
        envelope = self.request(
            "POST", "/rest/v1/activities/external.json", json={"input": list(activities)}, idempotent=False
        )
        return parse_record_results(envelope.get("result"), expected=len(activities))

    def get_paging_token(self, since: datetime) -> str:
        params = {"sinceDatetime": _iso_datetime(since)}
        envelope = self.request("GET", "/rest/v1/activities/pagingtoken.json", params=params)
        token = envelope.get("nextPageToken")
        if not token:
            raise MarketoRequestError(
                "Marketo returned no paging token for /rest/v1/activities/pagingtoken.json.",
                path="/rest/v1/activities/pagingtoken.json",
                request_id=envelope.get("requestId"),
            )
        return token

    def get_lead_activities(self, activity_type_ids, lead_ids, since: datetime) -> list[dict]:
        """Return the activities of the given types for the leads since `since`.

        Marketo takes at most 30 lead ids per call, so the ids are sent in
        chunks, each paged with nextPageToken while `moreResult` is true.
        """
        type_ids = [int(type_id) for type_id in activity_type_ids]
        _check_batch("activity type ids", type_ids, MAX_ACTIVITY_TYPE_IDS)
        lead_ids = [int(lead_id) for lead_id in lead_ids]
        if not type_ids or not lead_ids:
            return []

        # A paging token marks a point in time, so one token starts every chunk.
        start_token = self.get_paging_token(since)
        activities = []
        for chunk in _chunks(lead_ids, MAX_ACTIVITY_LEAD_IDS):
            params = {"activityTypeIds": type_ids, "leadIds": chunk, "nextPageToken": start_token}
            activities.extend(self._follow_pages("/rest/v1/activities.json", params))
        return activities

    # --- Program members -----------------------------------------------------

    def get_program_members(self, program_id: int, lead_ids, fields=("leadId", "statusName")) -> list[dict]:
        """Return the program's members among `lead_ids`; non-members are absent from the result."""
        lead_ids = [int(lead_id) for lead_id in lead_ids]
        path = f"/rest/v1/programs/{int(program_id)}/members.json"
        members = []
        for chunk in _chunks(lead_ids, MAX_BATCH_RECORDS):
            params = {"filterType": "leadId", "filterValues": chunk, "fields": list(fields)}
            members.extend(self._follow_pages(path, params))
        return members

    def sync_program_member_status(self, program_id: int, status_name: str, lead_ids) -> list[RecordResult]:
        """Set the program status of up to 300 leads, adding them as members when needed.

        Marketo skips a lead already at or past the status with 1037.
        Results are correlated by `seq`.
        """
        lead_ids = [int(lead_id) for lead_id in lead_ids]
        _check_batch("lead ids", lead_ids, MAX_BATCH_RECORDS)
        if not lead_ids:
            return []
        body = {"statusName": status_name, "input": [{"leadId": lead_id} for lead_id in lead_ids]}
        envelope = self.request(
            "POST", f"/rest/v1/programs/{int(program_id)}/members/status.json", json=body, idempotent=False
        )
        return parse_record_results(envelope.get("result"), expected=len(lead_ids))

    def describe_program_members(self) -> dict:
        return _first(self.request("GET", "/rest/v1/programs/members/describe.json")) or {}

    # --- Paging --------------------------------------------------------------

    def _follow_pages(self, path: str, params: dict) -> list[dict]:
        """Collect `result` across pages, sending nextPageToken back while moreResult is true."""
        items = []
        params = dict(params)
        while True:
            envelope = self.request("GET", path, params=params)
            items.extend(_result(envelope))
            token = envelope.get("nextPageToken")
            if not envelope.get("moreResult") or not token:
                return items
            params["nextPageToken"] = token


def _result(envelope: dict) -> list:
    return list(envelope.get("result") or [])


def _first(envelope: dict) -> dict | None:
    # An Asset API search that finds nothing succeeds with a "No assets
    # found" warning and no result; 702 also arrives here as an empty result.
    result = _result(envelope)
    return result[0] if result else None


def _single(envelope: dict, action: str) -> dict:
    result = _first(envelope)
    if result is None:
        raise MarketoRequestError(
            f"Marketo returned no result for {action}; warnings: {envelope.get('warnings') or 'none'}.",
            request_id=envelope.get("requestId"),
        )
    return result


def _type_path(api_name: str) -> str:
    if not api_name or not api_name.isalnum():
        raise ValueError(
            f"Invalid custom activity type apiName {api_name!r}: Marketo allows letters and digits only."
        )
    return f"/rest/v1/activities/external/type/{quote(api_name, safe='')}"


def _check_batch(what: str, items, limit: int) -> None:
    if len(items) > limit:
        raise ValueError(f"Too many {what}: {len(items)}, Marketo accepts at most {limit} per call. Split the batch.")


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _iso_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"Expected an aware datetime, got naive {value.isoformat()}; Marketo needs an offset.")
    return value.replace(microsecond=0).isoformat()
