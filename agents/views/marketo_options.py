"""Live Marketo options for the agent's Marketo page: slots, lead fields, programs, statuses.

Every read is optional. When the organization is not connected or Marketo
can't be reached, the page still renders with the saved values and explains
why the lists are short. Saving still goes through the full checks.
"""

import logging
from dataclasses import dataclass, field

from integrations.marketo.assets import CONVERSATION_ACTIVITY, MAX_ACTIVITY_ATTRIBUTES
from integrations.marketo.client import MarketoClient
from integrations.marketo.exceptions import MarketoError
from integrations.models import MarketoConnection
from integrations.writeback import metadata

logger = logging.getLogger(__name__)

# Step 0 of every channel is "Not in Program": enrolling a lead at it is a no-op.
NOT_IN_PROGRAM_STEP = 0


@dataclass
class ActivitySlots:
    """The Docket Conversation type as Marketo has it now: its attribute names and the slots left."""

    holders: list[tuple[str, str]]  # (apiName, display name), primary first

    @property
    def used(self) -> int:
        return len(self.holders)

    @property
    def left(self) -> int:
        return max(0, MAX_ACTIVITY_ATTRIBUTES - self.used)

    @property
    def api_names(self) -> set[str]:
        return {api_name for api_name, _ in self.holders}


@dataclass
class MarketoOptions:
    connection: MarketoConnection | None
    slots: ActivitySlots | None = None
    lead_fields: dict[str, dict] = field(default_factory=dict)
    programs: list[dict] = field(default_factory=list)
    statuses_by_channel: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.connection is not None

    def lead_field_choices(self, keep: list[str]) -> list[tuple[str, str]]:
        """Updateable lead fields as (REST name, "Display name (REST name)"), plus `keep` if missing."""
        choices = [
            (name, f"{spec.get('displayName') or name} ({name})")
            for name, spec in self.lead_fields.items()
            if spec.get("updateable", True)
        ]
        choices.sort(key=lambda choice: choice[1].lower())
        known = {name for name, _ in choices}
        missing_label = "{} (saved; not an updateable field in Marketo)" if self.lead_fields else "{}"
        choices.extend((name, missing_label.format(name)) for name in keep if name and name not in known)
        return choices

    def program_choices(self, keep: list[str]) -> list[tuple[str, str]]:
        """Programs by name, Docket Engagement first, plus saved programs Marketo didn't list."""
        from enrollment.models import DEFAULT_PROGRAM_NAME

        names = [program["name"] for program in self.programs]
        names.sort(key=lambda name: (name != DEFAULT_PROGRAM_NAME, name.lower()))
        if DEFAULT_PROGRAM_NAME not in names:
            names.insert(0, DEFAULT_PROGRAM_NAME)
        names.extend(name for name in keep if name and name not in names)
        return [(name, name) for name in names]

    def programs_by_status(self) -> dict[str, list[str]]:
        """Map each status name to the programs whose channel offers it."""
        result: dict[str, list[str]] = {}
        for program in self.programs:
            for status in self.statuses_by_channel.get(program.get("channel") or "", []):
                result.setdefault(status, []).append(program["name"])
        return result

    def status_choices(self, keep: list[str]) -> list[tuple[str, str]]:
        names = []
        for statuses in self.statuses_by_channel.values():
            names.extend(status for status in statuses if status not in names)
        names.extend(status for status in keep if status and status not in names)
        return [(name, name) for name in names]


def connected_connection(organization) -> MarketoConnection | None:
    return MarketoConnection.objects.filter(
        organization=organization, status=MarketoConnection.Status.CONNECTED
    ).first()


def read_options(organization, *, refresh: bool = False) -> MarketoOptions:
    """Read slots, lead fields, programs and channel statuses from the organization's Marketo.

    `refresh` drops the cached lead describe and channels first.
    """
    connection = connected_connection(organization)
    options = MarketoOptions(connection=connection)
    if connection is None:
        options.problems.append(
            "Marketo is not connected, so the lists below show only saved values. "
            "Connect it under Settings → Integrations → Marketo."
        )
        return options

    client = MarketoClient.for_connection(connection)
    try:
        options.slots = _read_slots(client)
        options.lead_fields = metadata.lead_fields(connection, client, refresh=refresh)
        channels = metadata.channels(connection, client, refresh=refresh)
        options.statuses_by_channel = {
            name: [status["name"] for status in channel["statuses"] if status["step"] != NOT_IN_PROGRAM_STEP]
            for name, channel in channels.items()
        }
        options.programs = [
            {"id": program.get("id"), "name": program["name"], "channel": program.get("channel", "")}
            for program in client.browse_programs()
            if program.get("name")
        ]
    except MarketoError as error:
        logger.warning("settings.marketo_read_failed org=%s error=%s", organization.slug, error)
        options.problems.append(
            f"Marketo could not be reached to read fields and programs: {error}. "
            "The lists below may be incomplete; try again in a minute."
        )
    return options


def _read_slots(client) -> ActivitySlots | None:
    described = client.describe_custom_activity_type(CONVERSATION_ACTIVITY.api_name, draft=True)
    if not described:
        return None

    holders = []
    primary = described.get("primaryAttribute") or {}
    if primary.get("apiName"):
        holders.append((primary["apiName"], primary.get("name") or primary["apiName"]))
    for attribute in described.get("attributes") or []:
        if attribute.get("apiName") and attribute["apiName"] != primary.get("apiName"):
            holders.append((attribute["apiName"], attribute.get("name") or attribute["apiName"]))
    return ActivitySlots(holders=holders)
