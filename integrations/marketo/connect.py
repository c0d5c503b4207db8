"""The Marketo connection flow shared by the settings page and `connect_marketo`.

The flow checks the credentials and the API role's permissions with
read-only calls and reports how much of the day's API quota other users
have taken. It then checks the "Docket" channel and finds or creates the
folder, the program and the two custom activity types this product writes
to. Every asset is looked up before it is created, so running the flow
again creates nothing twice. An existing asset is adopted only when it
matches the definitions in `integrations.marketo.assets`.

Every failure raises ConnectionFlowError with the sentence the customer
sees, after the connection's status and last error are saved.
"""

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.models import Organization
from integrations.marketo import messages
from integrations.marketo.assets import (
    ACTIVITY_TYPES,
    CHANNEL_NAME,
    CHANNEL_STATUS_ENGAGED,
    CHANNEL_STATUS_MEETING_BOOKED,
    CONVERSATION_ACTIVITY,
    FOLDER_DESCRIPTION,
    FOLDER_NAME,
    MEETING_ACTIVITY,
    PROGRAM_DESCRIPTION,
    PROGRAM_NAME,
    ActivityTypeSpec,
)
from integrations.marketo.client import MarketoClient, clear_token_cache
from integrations.marketo.exceptions import (
    MarketoBudgetExhaustedError,
    MarketoCredentialsError,
    MarketoError,
    MarketoPermissionError,
    MarketoQuotaExceededError,
    MarketoRateLimitError,
    MarketoRequestError,
    MarketoTransientError,
    MarketoUnreachableError,
)
from integrations.marketo.quota import calls_today, next_quota_reset
from integrations.models import MUNCHKIN_ID_PATTERN, AuditLogEntry, MarketoConnection
from integrations.validators import validate_base_url

logger = logging.getLogger(__name__)

MARKETING_ACTIVITIES = "Marketing Activities"

# Share of the daily quota that other API users may have taken before the
# flow warns. The setup guide requires customers to confirm that the quota
# isn't heavily used, and Docket's own default share is half the quota.
USAGE_WARNING_PERCENT = 50

# Channel `applicableProgramType` codes and the program type to send on
# create. Marketo's docs pair them only implicitly (tags list the codes,
# program responses print the display names), so both spellings are accepted.
PROGRAM_TYPE_BY_CHANNEL_CODE = {
    "program": "Default",
    "default": "Default",
    "nurture": "Engagement",
    "engagement": "Engagement",
    "event": "Event",
    "webinar": "Event with Webinar",
    "event with webinar": "Event with Webinar",
    "email_batch": "Email",
    "email": "Email",
}

# Failed creates after which the asset is looked up again before the error
# is reported. Marketo documents no code for a duplicate folder, program or
# activity type name: 709 (lists and emails since 2020), 611 (before 2020,
# a transient code the client retries) and 1017 "Object already exists" are
# the likely ones. A response lost after sending may also hide a create that
# went through.
_RELOOKUP_ERRORS = (MarketoRequestError, MarketoTransientError)

ACTIVITY_TYPE_LIMIT_CODE = "1027"
ACTIVITY_ATTRIBUTE_LIMIT_CODE = "1028"


class ConnectionFlowError(Exception):
    """A failed connection step; `message` is the sentence shown to the customer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class AssetOutcome:
    """An asset the flow created, adopted or updated in Marketo."""

    kind: str
    name: str
    marketo_id: int | None
    action: str  # "created", "adopted" or "updated"
    detail: str = ""

    def describe(self) -> str:
        text = f'{self.kind} "{self.name}" (id {self.marketo_id})'
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class ConnectionResult:
    """Outcome of one run of the flow: the assets found, created or adopted, and the ids to store."""

    connection: MarketoConnection
    assets: list[AssetOutcome] = field(default_factory=list)
    # None when the run skipped the usage report (run_setup).
    usage_warning: str | None = None
    program_type: str = ""
    folder_id: int | None = None
    program_id: int | None = None
    activity_type_ids: dict[str, int] = field(default_factory=dict)

    def _described(self, action: str) -> list[str]:
        return [asset.describe() for asset in self.assets if asset.action == action]

    @property
    def created(self) -> list[str]:
        return self._described("created")

    @property
    def adopted(self) -> list[str]:
        return self._described("adopted")

    @property
    def updated(self) -> list[str]:
        return self._described("updated")

    @property
    def summary(self) -> str:
        return messages.connected_summary(
            self.connection.munchkin_id, self.created, self.adopted, self.updated
        )


# --- Entry points -------------------------------------------------------------

def connect_marketo(
    organization: Organization,
    *,
    munchkin_id: str,
    client_id: str,
    client_secret: str,
    base_url: str | None = None,
    actor: str = "system",
) -> ConnectionResult:
    """Store new credentials for `organization` and run the whole flow.

    The submitted credentials are saved even when a check fails, so the
    settings page shows what was tried and why it failed, with the status
    `not_connected` and the message in `last_error`. The exception is a
    working connection: failed new credentials are discarded and the
    working ones restored, so a typo can't stop the writeback.
    """
    munchkin_id = (munchkin_id or "").strip().upper()
    client_id = (client_id or "").strip()
    client_secret = (client_secret or "").strip()
    _validate_input(munchkin_id, client_id, client_secret)
    base_url_override = ""
    if base_url:
        base_url_override = _validated_base_url(base_url)

    previous = _working_snapshot(organization)
    connection, created_row, changes = _store_credentials(
        organization, munchkin_id, client_id, client_secret, base_url_override
    )
    action = "marketo.connect" if created_row or connection.connected_at is None else "marketo.reconnect"
    try:
        return _run_flow(
            connection, actor=actor, audit_action=action, checks=True, fresh_token=True, changes=changes
        )
    except ConnectionFlowError as error:
        if previous is None:
            raise
        _restore_working(organization, previous, error.message)
        raise ConnectionFlowError(messages.new_credentials_not_saved(error.message)) from None


# Fields that make a connection work; restored when new credentials fail.
_WORKING_FIELDS = (
    "munchkin_id", "client_id", "client_secret_encrypted", "base_url_override", "status", "status_message",
    "folder_id", "program_id", "program_type", "channel_name", "conversation_activity_type_id",
    "meeting_activity_type_id", "connected_at", "metadata_cache", "paused_until", "pause_reason",
)


def _working_snapshot(organization) -> dict | None:
    connection = MarketoConnection.objects.filter(
        organization=organization, status=MarketoConnection.Status.CONNECTED
    ).first()
    if connection is None:
        return None
    return {name: getattr(connection, name) for name in _WORKING_FIELDS}


def _restore_working(organization, previous: dict, message: str):
    """Put back a working connection after new credentials failed, so the writeback keeps running."""
    MarketoConnection.objects.filter(organization=organization).update(
        **previous, last_error=messages.new_credentials_not_saved(message)
    )
    logger.warning(
        "Marketo connection for org %s kept its working credentials after a failed change", organization.slug
    )


def check_connection(connection: MarketoConnection, *, actor: str = "system") -> ConnectionResult:
    """Run every check again with the stored credentials, then find or create the assets.

    Used by "Test connection" and to resume a connection that needs
    attention: a passing run sets the status back to connected and lifts
    the writeback pause a needs-attention failure set.
    """
    return _run_flow(connection, actor=actor, audit_action="marketo.check", checks=True)


def run_setup(connection: MarketoConnection, *, actor: str = "system") -> ConnectionResult:
    """Find or create the folder, program and activity types again, creating nothing twice.

    Skips the permission probes and the usage report, but still checks the
    channel, because the program's type depends on it.
    """
    return _run_flow(connection, actor=actor, audit_action="marketo.setup", checks=False)


# --- Input and storage ------------------------------------------------------------

def _validate_input(munchkin_id: str, client_id: str, client_secret: str):
    if not MUNCHKIN_ID_PATTERN.match(munchkin_id):
        raise ConnectionFlowError(messages.invalid_munchkin_id(munchkin_id))
    if not client_id:
        raise ConnectionFlowError(messages.missing_value("Client ID"))
    if not client_secret:
        raise ConnectionFlowError(messages.missing_value("Client Secret"))


def _validated_base_url(value: str) -> str:
    try:
        return validate_base_url(value)
    except ValidationError as error:
        raise ConnectionFlowError(" ".join(error.messages)) from None


def _store_credentials(organization, munchkin_id, client_id, client_secret, base_url_override):
    """Save the submitted credentials and forget asset ids that belong to another instance.

    Returns the connection, whether its row is new, and the changed
    settings as `{field: [old, new]}` for the audit log, with the secret
    marked as changed but never included.
    """
    with transaction.atomic():
        connection = (
            MarketoConnection.objects.select_for_update()
            .filter(organization=organization)
            .first()
        )
        created_row = connection is None
        if created_row:
            connection = MarketoConnection(organization=organization)

        same_instance = (
            not created_row
            and connection.munchkin_id == munchkin_id
            and connection.base_url_override == base_url_override
        )
        if not same_instance:
            # Ids of another instance's folder, program and types would be
            # wrong here, and so would the status of a connection to it.
            _clear_assets(connection)
            connection.connected_at = None
            connection.status = MarketoConnection.Status.NOT_CONNECTED
            connection.metadata_cache = {}

        changes = {}
        submitted = {"munchkin_id": munchkin_id, "client_id": client_id, "base_url_override": base_url_override}
        for name, value in submitted.items():
            old = "" if created_row else getattr(connection, name)
            if old != value:
                changes[name] = [old, value]
        if created_row or not connection.has_client_secret or connection.get_client_secret() != client_secret:
            changes["client_secret"] = "changed"

        connection.munchkin_id = munchkin_id
        connection.client_id = client_id
        connection.set_client_secret(client_secret)
        connection.base_url_override = base_url_override
        connection.save()
    return connection, created_row, changes


def _clear_assets(connection: MarketoConnection):
    connection.folder_id = None
    connection.program_id = None
    connection.program_type = ""
    connection.channel_name = ""
    connection.conversation_activity_type_id = None
    connection.meeting_activity_type_id = None


# --- The flow -------------------------------------------------------------------

def _run_flow(connection, *, actor, audit_action, checks, fresh_token=False, changes=None) -> ConnectionResult:
    flow = _ConnectionFlow(connection)
    try:
        result = flow.run(checks=checks, fresh_token=fresh_token)
    except ConnectionFlowError as error:
        _save_failure(connection, error.message)
        _audit(connection, actor, audit_action, flow.result, changes, error=error.message)
        logger.warning(
            "Marketo connection for org %s (Munchkin %s) failed: %s",
            connection.organization.slug, connection.munchkin_id, error.message,
        )
        raise

    _save_success(connection, result)
    _audit(connection, actor, audit_action, result, changes)
    logger.info(
        "Marketo connection for org %s (Munchkin %s) succeeded: %s",
        connection.organization.slug, connection.munchkin_id, connection.status_message,
    )
    return result


class _ConnectionFlow:
    """One run of the checks and the asset setup against one connection."""

    def __init__(self, connection: MarketoConnection):
        self.connection = connection
        self.result = ConnectionResult(connection=connection)
        self.client = None
        self.usage = []
        self.own_calls = 0

    def run(self, *, checks: bool, fresh_token: bool = False) -> ConnectionResult:
        if fresh_token:
            # Tokens are cached per base URL and client id, so a token fetched
            # with the previous secret would hide a wrong new one. Every
            # client in this process fetches a new token once; identity calls
            # don't count against Marketo's quota.
            clear_token_cache()
        self.client = MarketoClient.for_connection(self.connection)

        if checks:
            self._step("credentials", self._check_credentials)
            self._step("permissions", self._probe_permissions)
            self._step("usage", self._report_usage)

        self._step("channel", self._check_channel)
        self._step("folder", self._set_up_folder)
        self._step("program", self._set_up_program)
        for spec in ACTIVITY_TYPES:
            self._step(f"activity type {spec.api_name}", lambda spec=spec: self._set_up_activity_type(spec))
        self._step("activity type ids", self._read_activity_type_ids)
        return self.result

    def _step(self, name, function):
        slug = self.connection.organization.slug
        munchkin_id = self.connection.munchkin_id
        logger.info("Marketo connection for org %s (Munchkin %s): %s started", slug, munchkin_id, name)
        try:
            outcome = function()
        except ConnectionFlowError as error:
            logger.info(
                "Marketo connection for org %s (Munchkin %s): %s failed: %s",
                slug, munchkin_id, name, error.message,
            )
            raise
        except Exception:
            # A response shape this flow doesn't expect, or a bug: the
            # customer gets a message and the log gets the traceback.
            logger.exception(
                "Marketo connection for org %s (Munchkin %s): %s failed unexpectedly", slug, munchkin_id, name
            )
            raise ConnectionFlowError(messages.unexpected_failure(name)) from None
        logger.info(
            "Marketo connection for org %s (Munchkin %s): %s done%s",
            slug, munchkin_id, name, f": {outcome}" if outcome else "",
        )

    @contextmanager
    def _marketo_call(self, action: str, *, permission: str | None = None):
        """Translate a client exception raised while doing `action` into ConnectionFlowError."""
        try:
            yield
        except MarketoError as error:
            raise self._flow_error(action, error, permission=permission) from None

    def _flow_error(self, action: str, error: MarketoError, *, permission: str | None = None) -> ConnectionFlowError:
        """Return the customer-facing error for `error`, raised while doing `action`.

        `permission` names the Access API permission a 603 means here; a
        write that isn't given one names the permission the client derived
        from the endpoint.
        """
        if isinstance(error, MarketoCredentialsError):
            return ConnectionFlowError(messages.CREDENTIALS_REJECTED)
        if isinstance(error, MarketoPermissionError):
            needed = permission or error.permission
            if needed is None:
                # Only endpoints that need no permission come without one.
                return ConnectionFlowError(messages.IP_ALLOWLIST_BLOCKED)
            return ConnectionFlowError(messages.missing_permission(needed))
        if isinstance(error, MarketoQuotaExceededError):
            return ConnectionFlowError(messages.QUOTA_EXCEEDED)
        if isinstance(error, MarketoBudgetExhaustedError):
            return ConnectionFlowError(messages.docket_budget_used(error.resume_at))
        if isinstance(error, MarketoRateLimitError):
            return ConnectionFlowError(messages.rate_limited(_error_text(error)))
        if isinstance(error, MarketoUnreachableError):
            return ConnectionFlowError(messages.unreachable(self.connection.base_url, _error_text(error)))
        if isinstance(error, MarketoTransientError):
            return ConnectionFlowError(messages.temporarily_unavailable(_error_text(error)))
        return ConnectionFlowError(messages.marketo_error(action, _error_text(error)))

    # --- Checks ---------------------------------------------------------------

    def _check_credentials(self):
        """Fetch a token and read today's API usage, which needs no role permission.

        An identity 401 means the Client ID or Secret is wrong. A 603 on this
        call can't be a missing permission, so it comes from an IP allowlist.
        """
        with self._marketo_call("reading API usage"):
            self.usage = self.client.get_daily_usage()
        # Marketo's total includes Docket's own calls so far, which the client
        # records for this connection's quota day.
        self.own_calls = calls_today(self.connection)
        return "access token issued"

    def _probe_permissions(self):
        """Find a missing permission with read-only calls, in the order of what each proves.

        Marketo's 603 never names the permission, so the endpoint that
        returns it does. No probe writes to the customer's instance.
        """
        probes = (
            (messages.PERMISSION_ASSETS_READ, "browsing channels",
             lambda: self.client.request("GET", "/rest/asset/v1/channels.json", params={"maxReturn": 1})),
            (messages.PERMISSION_PERSON, "describing lead fields", self.client.describe_leads),
            (messages.PERMISSION_ACTIVITY, "listing activity types", self.client.list_activity_types),
            (messages.PERMISSION_ACTIVITY_METADATA, "listing custom activity types",
             self.client.list_custom_activity_types),
        )
        for permission, action, probe in probes:
            with self._marketo_call(action, permission=permission):
                probe()
        return "all permissions present"

    def _report_usage(self):
        """Warn when other API users have already taken a large share of today's quota."""
        day = _first(self.usage) or {}
        total = _int_or_none(day.get("total")) or 0
        used_by_others = max(0, total - self.own_calls)
        quota = self.connection.daily_quota

        warning = ""
        if quota and used_by_others * 100 >= quota * USAGE_WARNING_PERCENT:
            warning = messages.usage_warning(used_by_others, quota)
        self.result.usage_warning = warning
        return warning or f"{used_by_others} calls by other API users today"

    def _check_channel(self):
        """Require the Docket channel with Engaged before Meeting Booked; set the program type."""
        with self._marketo_call("looking up the Docket channel", permission=messages.PERMISSION_ASSETS_READ):
            channel = self.client.get_channel_by_name(CHANNEL_NAME)

        # The channel name is case-sensitive in the setup guide, while
        # Marketo's lookup may not be.
        if not channel or channel.get("name") != CHANNEL_NAME:
            raise ConnectionFlowError(messages.CHANNEL_MISSING)

        steps = {status.get("name"): status.get("step") for status in channel.get("progressionStatuses") or []}
        for status in (CHANNEL_STATUS_ENGAGED, CHANNEL_STATUS_MEETING_BOOKED):
            if status not in steps:
                raise ConnectionFlowError(messages.channel_status_missing(status))
        engaged_step = _int_or_none(steps[CHANNEL_STATUS_ENGAGED])
        booked_step = _int_or_none(steps[CHANNEL_STATUS_MEETING_BOOKED])
        if engaged_step is None or booked_step is None or engaged_step >= booked_step:
            raise ConnectionFlowError(messages.channel_statuses_out_of_order(engaged_step, booked_step))

        # A channel serves only programs of its applicable type (Marketo's
        # documented rule), so the channel decides the program type. The setup
        # guide names "type: Engagement" but has the admin create the channel
        # for Default programs. Following the channel keeps the create valid.
        code = str(channel.get("applicableProgramType") or "").strip()
        program_type = PROGRAM_TYPE_BY_CHANNEL_CODE.get(code.lower())
        if not program_type:
            raise ConnectionFlowError(messages.channel_program_type_unsupported(code))
        self.result.program_type = program_type
        return f"statuses present, programs of type {program_type}"

    # --- Folder ---------------------------------------------------------------

    def _set_up_folder(self):
        parent = self._marketing_activities_parent()

        existing = self._find_folder(parent)
        if existing:
            self.result.folder_id = existing["id"]
            self._record("folder", FOLDER_NAME, self.result.folder_id, "adopted", _path(existing))
            return f"adopted folder {self.result.folder_id}"

        action = f'creating the folder "{FOLDER_NAME}"'
        parent_reference = {"id": parent["id"], "type": "Folder"}
        try:
            folder = self.client.create_folder(FOLDER_NAME, parent_reference, FOLDER_DESCRIPTION)
        except MarketoPermissionError:
            raise ConnectionFlowError(
                messages.assets_read_only(f'folder "{FOLDER_NAME}"', self.result.program_type)
            ) from None
        except _RELOOKUP_ERRORS as error:
            # Marketo doesn't document the error for a duplicate folder name
            # (709 or 611 are likely), and a lost response may hide a create
            # that went through: either way, a folder that exists now is adopted.
            existing = self._find_folder(parent)
            if not existing:
                raise self._flow_error(action, error) from None
            self.result.folder_id = existing["id"]
            self._record("folder", FOLDER_NAME, self.result.folder_id, "adopted", _path(existing))
            return f"adopted folder {self.result.folder_id} after a failed create ({error.code})"
        except MarketoError as error:
            raise self._flow_error(action, error) from None

        self.result.folder_id = folder["id"]
        self._record("folder", FOLDER_NAME, self.result.folder_id, "created", _path(folder))
        return f"created folder {self.result.folder_id}"

    def _marketing_activities_parent(self) -> dict:
        """Return the folder the Docket folder belongs in: Marketing Activities, or its workspace zone.

        In an instance with workspaces the tree reads /Marketing Activities/Default,
        and folders go into the zone (the Default one when there are several).
        """
        with self._marketo_call("looking up the Marketing Activities folder"):
            roots = self.client.get_folder_by_name(MARKETING_ACTIVITIES)
        top_level = [root for root in roots if not root.get("parent") or _path(root) == f"/{MARKETING_ACTIVITIES}"]
        roots = top_level or roots
        if not roots:
            raise ConnectionFlowError(messages.MARKETING_ACTIVITIES_MISSING)
        root = roots[0]

        with self._marketo_call("browsing the Marketing Activities folder"):
            envelope = self.client.request(
                "GET", "/rest/asset/v1/folders.json",
                params={"root": {"id": root["id"], "type": "Folder"}, "maxDepth": 1, "maxReturn": 200},
            )
        children = [
            folder for folder in envelope.get("result") or []
            if _reference_id(folder.get("parent")) == root["id"]
        ]
        zones = [child for child in children if str(child.get("folderType", "")).lower() == "zone"]
        if not zones:
            return root
        return next((zone for zone in zones if zone.get("name") == "Default"), zones[0])

    def _find_folder(self, parent: dict) -> dict | None:
        """Return the Docket folder under Marketing Activities, preferring a direct child of `parent`."""
        with self._marketo_call(f'looking up the folder "{FOLDER_NAME}"'):
            found = self.client.get_folder_by_name(FOLDER_NAME, root={"id": parent["id"], "type": "Folder"})
        found = [folder for folder in found if folder.get("name") == FOLDER_NAME]
        direct = [folder for folder in found if _reference_id(folder.get("parent")) == parent["id"]]
        if direct:
            return direct[0]
        under_root = [folder for folder in found if _path(folder).startswith(f"/{MARKETING_ACTIVITIES}/")]
        return under_root[0] if under_root else None

    # --- Program --------------------------------------------------------------

    def _set_up_program(self):
        existing = self._find_program()
        if existing:
            self._adopt_program(existing)
            return f"adopted program {self.result.program_id}"

        action = f'creating the program "{PROGRAM_NAME}"'
        folder_reference = {"id": self.result.folder_id, "type": "Folder"}
        try:
            program = self.client.create_program(
                PROGRAM_NAME, folder_reference, self.result.program_type, CHANNEL_NAME, PROGRAM_DESCRIPTION
            )
        except MarketoPermissionError:
            raise ConnectionFlowError(
                messages.assets_read_only(f'program "{PROGRAM_NAME}"', self.result.program_type)
            ) from None
        except _RELOOKUP_ERRORS as error:
            # A duplicate name (709 or 611, undocumented for programs) or a
            # lost response: adopt a program that exists now, if it matches.
            existing = self._find_program()
            if existing:
                self._adopt_program(existing)
                return f"adopted program {self.result.program_id} after a failed create ({error.code})"
            self._raise_for_required_tags(error)
            raise self._flow_error(action, error) from None
        except MarketoError as error:
            raise self._flow_error(action, error) from None

        self.result.program_id = program["id"]
        self._record("program", PROGRAM_NAME, self.result.program_id, "created", self._program_detail())
        return f"created program {self.result.program_id}"

    def _find_program(self) -> dict | None:
        with self._marketo_call(f'looking up the program "{PROGRAM_NAME}"'):
            program = self.client.get_program_by_name(PROGRAM_NAME)
        return program if program and program.get("name") == PROGRAM_NAME else None

    def _adopt_program(self, program: dict):
        """Adopt `program` when its type, channel and folder match; otherwise report the conflict."""
        differences = []
        actual_type = str(program.get("type") or "")
        if _normalized_program_type(actual_type) != self.result.program_type.lower():
            differences.append(messages.program_difference_type(actual_type, self.result.program_type))
        actual_channel = str(program.get("channel") or "")
        if actual_channel != CHANNEL_NAME:
            differences.append(messages.program_difference_channel(actual_channel, CHANNEL_NAME))
        folder = program.get("folder") or {}
        if _reference_id(folder) != self.result.folder_id:
            where = f'the folder "{folder["folderName"]}"' if folder.get("folderName") else f"folder {_reference_id(folder)}"
            differences.append(messages.program_difference_folder(where, self.result.folder_id))
        if differences:
            raise ConnectionFlowError(messages.program_conflict(program.get("id"), differences))

        self.result.program_id = program["id"]
        self._record("program", PROGRAM_NAME, self.result.program_id, "adopted", self._program_detail())

    def _program_detail(self) -> str:
        return f"type {self.result.program_type}, channel {CHANNEL_NAME}"

    def _raise_for_required_tags(self, error: MarketoError):
        """Explain a rejected program create by a tag type this instance requires, if there is one."""
        with self._marketo_call("reading tag types"):
            tag_types = self.client.get_tag_types()
        for tag_type in tag_types:
            if not tag_type.get("required"):
                continue
            applicable = _program_type_codes(tag_type.get("applicableProgramTypes"))
            if applicable and self.result.program_type.lower() not in applicable:
                continue
            name = tag_type.get("tagType") or tag_type.get("name")
            raise ConnectionFlowError(
                messages.program_tag_required(
                    _marketo_message(error), self.result.program_type, name, self._tag_values(name)
                )
            )

    def _tag_values(self, tag_type: str) -> list[str]:
        # Only the by-name lookup returns a tag type's allowable values.
        with self._marketo_call(f'looking up the tag type "{tag_type}"'):
            envelope = self.client.request("GET", "/rest/asset/v1/tagType/byName.json", params={"name": tag_type})
        described = _first(envelope.get("result")) or {}
        values = described.get("allowableValues") or []
        if isinstance(values, str):
            values = values.split(",")
        return [str(value).strip() for value in values if str(value).strip()]

    # --- Activity types -------------------------------------------------------

    def _set_up_activity_type(self, spec: ActivityTypeSpec):
        types = self._list_custom_activity_types()
        existing = next((item for item in types if item.get("apiName") == spec.api_name), None)
        if existing is not None:
            return self._adopt_activity_type(spec, existing)

        self._check_names_free(spec, types)
        return self._create_activity_type(spec)

    def _list_custom_activity_types(self) -> list[dict]:
        with self._marketo_call("listing custom activity types", permission=messages.PERMISSION_ACTIVITY_METADATA):
            return self.client.list_custom_activity_types()

    def _check_names_free(self, spec: ActivityTypeSpec, types: list[dict]):
        """Raise when another type already uses this type's display, trigger or filter name."""
        wanted = (
            ("name", "name", spec.name),
            ("trigger name", "triggerName", spec.trigger_name),
            ("filter name", "filterName", spec.filter_name),
        )
        for other in types:
            for label, key, value in wanted:
                if other.get(key) == value:
                    raise ConnectionFlowError(
                        messages.activity_type_name_taken(spec.name, label, value, other.get("apiName"))
                    )

    def _create_activity_type(self, spec: ActivityTypeSpec):
        action = f'creating the activity type "{spec.name}"'
        try:
            self.client.create_custom_activity_type(spec.create_payload())
        except MarketoPermissionError:
            raise ConnectionFlowError(messages.missing_permission(messages.PERMISSION_ACTIVITY_METADATA)) from None
        except MarketoError as error:
            if error.code == ACTIVITY_TYPE_LIMIT_CODE:
                raise ConnectionFlowError(messages.activity_type_limit(spec.name)) from None
            if not isinstance(error, _RELOOKUP_ERRORS):
                raise self._flow_error(action, error) from None
            # A duplicate apiName (709, 1017 or 611: undocumented) or a lost
            # response: a type that exists now is checked and adopted.
            existing = next(
                (item for item in self._list_custom_activity_types() if item.get("apiName") == spec.api_name), None
            )
            if existing is None:
                raise self._flow_error(action, error) from None
            return self._adopt_activity_type(spec, existing)

        self._add_attributes(spec, [attribute.as_marketo() for attribute in spec.attributes])
        self._approve(spec)
        self._record("activity type", spec.name, None, "created", f"{spec.mandatory_count} attributes, approved")
        return "created and approved"

    def _adopt_activity_type(self, spec: ActivityTypeSpec, existing: dict):
        """Adopt a matching type, adding missing mandatory attributes and approving when needed.

        Attributes are only ever added, never removed or changed. A type
        whose approved version is complete is left alone, so an admin's
        pending draft is never published by this flow.
        """
        status = str(existing.get("status") or "").lower()
        live = status in ("approved", "approved with draft")
        description = self._describe(spec, draft=not live)
        self._check_activity_type_matches(spec, description)

        missing = _missing_attributes(spec, description)
        if live and not missing:
            self._record("activity type", spec.name, None, "adopted")
            return "adopted"

        if status == "approved with draft":
            # Approving publishes the whole draft, so the draft must match too,
            # and attributes it already contains need not be added again.
            description = self._describe(spec, draft=True)
            self._check_activity_type_matches(spec, description)
            missing = _missing_attributes(spec, description)
        if missing:
            self._add_attributes(spec, missing)
        self._approve(spec)

        changes = []
        if missing:
            names = ", ".join(attribute["apiName"] for attribute in missing)
            changes.append(f"added {len(missing)} missing attributes ({names})")
        changes.append("approved")
        self._record("activity type", spec.name, None, "updated", " and ".join(changes))
        return "updated"

    def _describe(self, spec: ActivityTypeSpec, *, draft: bool) -> dict:
        with self._marketo_call(
            f'describing the activity type "{spec.name}"', permission=messages.PERMISSION_ACTIVITY_METADATA
        ):
            return self.client.describe_custom_activity_type(spec.api_name, draft=draft) or {}

    def _check_activity_type_matches(self, spec: ActivityTypeSpec, description: dict):
        """Raise a conflict unless the names and the primary attribute match `spec`.

        Marketo can't change these once the type is in use, and an
        attribute can't change its data type without being deleted, which
        this flow never does, so a mismatched data type is a conflict too.
        """
        differences = []
        expected = (
            ("name", "name", spec.name),
            ("trigger name", "triggerName", spec.trigger_name),
            ("filter name", "filterName", spec.filter_name),
        )
        for label, key, value in expected:
            if description.get(key) != value:
                differences.append(messages.activity_difference(label, description.get(key), value))

        primary = description.get("primaryAttribute") or {}
        if primary.get("apiName") != spec.primary.api_name:
            differences.append(
                messages.activity_difference("primary attribute", primary.get("apiName"), spec.primary.api_name)
            )
        elif str(primary.get("dataType") or "").lower() != spec.primary.data_type:
            differences.append(
                messages.activity_difference(
                    "primary attribute's data type", primary.get("dataType"), spec.primary.data_type
                )
            )

        present = {attribute.get("apiName"): attribute for attribute in description.get("attributes") or []}
        for attribute in spec.attributes:
            found = present.get(attribute.api_name)
            if found and str(found.get("dataType") or "").lower() != attribute.data_type:
                differences.append(
                    messages.activity_difference(
                        f'attribute "{attribute.api_name}" data type', found.get("dataType"), attribute.data_type
                    )
                )

        if differences:
            raise ConnectionFlowError(messages.activity_type_conflict(spec.name, spec.api_name, differences))

    def _add_attributes(self, spec: ActivityTypeSpec, attributes: list[dict]):
        action = f'adding attributes to the activity type "{spec.name}"'
        with self._marketo_call(action, permission=messages.PERMISSION_ACTIVITY_METADATA):
            try:
                self.client.create_custom_activity_attributes(spec.api_name, attributes)
            except MarketoError as error:
                if error.code == ACTIVITY_ATTRIBUTE_LIMIT_CODE:
                    raise ConnectionFlowError(messages.activity_attribute_limit(spec.name)) from None
                raise

    def _approve(self, spec: ActivityTypeSpec):
        with self._marketo_call(
            f'approving the activity type "{spec.name}"', permission=messages.PERMISSION_ACTIVITY_METADATA
        ):
            self.client.approve_custom_activity_type(spec.api_name)

    def _read_activity_type_ids(self):
        """Store the types' numeric ids, read from the type list because a create response may lack them."""
        with self._marketo_call("listing custom activity types", permission=messages.PERMISSION_ACTIVITY_METADATA):
            types = self.client.list_custom_activity_types()
        ids = {item.get("apiName"): item.get("id") for item in types}
        for spec in ACTIVITY_TYPES:
            if ids.get(spec.api_name) is None:
                raise ConnectionFlowError(
                    messages.marketo_error(f'reading the id of the activity type "{spec.name}"', "the type is not listed")
                )
            self.result.activity_type_ids[spec.api_name] = int(ids[spec.api_name])
        for outcome in self.result.assets:
            if outcome.kind == "activity type":
                spec = next(spec for spec in ACTIVITY_TYPES if spec.name == outcome.name)
                outcome.marketo_id = self.result.activity_type_ids[spec.api_name]
        return ", ".join(f"{name}={value}" for name, value in self.result.activity_type_ids.items())

    def _record(self, kind, name, marketo_id, action, detail=""):
        self.result.assets.append(AssetOutcome(kind, name, marketo_id, action, detail))


# --- Saving -----------------------------------------------------------------------

_SAVED_FIELDS = [
    "status", "status_message", "last_error", "usage_warning", "connected_at", "last_checked_at",
    "folder_id", "program_id", "program_type", "channel_name",
    "conversation_activity_type_id", "meeting_activity_type_id", "updated_at",
]


def _save_success(connection: MarketoConnection, result: ConnectionResult):
    now = timezone.now()
    connection.status = MarketoConnection.Status.CONNECTED
    connection.status_message = result.summary
    connection.last_error = ""
    if result.usage_warning is not None:
        connection.usage_warning = result.usage_warning
    connection.connected_at = connection.connected_at or now
    connection.last_checked_at = now
    connection.folder_id = result.folder_id
    connection.program_id = result.program_id
    connection.program_type = result.program_type
    connection.channel_name = CHANNEL_NAME
    connection.conversation_activity_type_id = result.activity_type_ids[CONVERSATION_ACTIVITY.api_name]
    connection.meeting_activity_type_id = result.activity_type_ids[MEETING_ACTIVITY.api_name]
    connection.save(update_fields=_SAVED_FIELDS)

    # Writeback pauses until the quota day ends after a 607 or when Docket's
    # budget is spent, and far beyond it while the connection needs
    # attention. A passing run fixes only the latter, so only a pause
    # reaching past the next reset is lifted.
    lifted = MarketoConnection.objects.filter(
        pk=connection.pk, paused_until__gt=next_quota_reset(now)
    ).update(paused_until=None, pause_reason="")
    if lifted:
        connection.paused_until = None
        connection.pause_reason = ""
        logger.info(
            "Marketo connection for org %s (Munchkin %s): writeback pause lifted",
            connection.organization.slug, connection.munchkin_id,
        )


def _save_failure(connection: MarketoConnection, message: str):
    """Record the failure; a connection that worked with this instance needs attention."""
    if connection.connected_at is not None:
        connection.status = MarketoConnection.Status.NEEDS_ATTENTION
    else:
        connection.status = MarketoConnection.Status.NOT_CONNECTED
    connection.last_error = message
    connection.status_message = message
    connection.last_checked_at = timezone.now()
    connection.save(update_fields=["status", "last_error", "status_message", "last_checked_at", "updated_at"])


def _audit(connection, actor, action, result: ConnectionResult, changes, error=""):
    details = {
        "munchkin_id": connection.munchkin_id,
        "status": connection.status,
        "changed": changes or {},
        "created": result.created,
        "adopted": result.adopted,
        "updated": result.updated,
    }
    if error:
        details["error"] = error
    AuditLogEntry.objects.create(
        organization=connection.organization,
        actor=actor or "system",
        action=action,
        object_type="MarketoConnection",
        object_repr=str(connection)[:300],
        changes=details,
    )


# --- Helpers --------------------------------------------------------------------

def _first(items) -> dict | None:
    return items[0] if items else None


def _path(folder: dict) -> str:
    return str(folder.get("path") or "")


def _reference_id(reference) -> int | None:
    """Return the id in a folder reference: `{"id": 1, ...}` or a program's `{"value": 1, ...}`."""
    if not isinstance(reference, dict):
        return None
    value = reference.get("id", reference.get("value"))
    return _int_or_none(value)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _normalized_program_type(value: str) -> str:
    """Return a program type in display form, lower-cased: `nurture` and `Engagement` → `engagement`."""
    return str(PROGRAM_TYPE_BY_CHANNEL_CODE.get(str(value).strip().lower(), value)).lower()


def _program_type_codes(value) -> set[str]:
    if not value:
        return set()
    if isinstance(value, str):
        value = value.split(",")
    return {_normalized_program_type(item) for item in value if str(item).strip()}


def _missing_attributes(spec: ActivityTypeSpec, description: dict) -> list[dict]:
    present = {attribute.get("apiName") for attribute in description.get("attributes") or []}
    return [attribute.as_marketo() for attribute in spec.attributes if attribute.api_name not in present]


# The client prefixes Marketo's own message with the code and the path.
_CLIENT_PREFIX = re.compile(r"^Marketo error \S+ on \S+: ")


def _marketo_message(error: MarketoError) -> str:
    """Return Marketo's own message for `error`, without the client's prefix."""
    return _CLIENT_PREFIX.sub("", error.message or "").rstrip(".")


def _error_text(error: MarketoError) -> str:
    message = (error.message or str(error)).rstrip(".")
    if error.code and error.code not in message:
        return f"{message} (code {error.code})"
    return message
