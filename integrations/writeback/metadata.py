"""Marketo metadata that rarely changes, cached on the connection.

Adobe recommends caching describe results, activity types, programs and
channels for a day or more instead of re-reading them per write. Each entry
lives MARKETO_METADATA_CACHE_SECONDS (default one day); `refresh=True` or
`forget` drops an entry early, e.g. after a program turns out to be deleted.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from integrations.models import MarketoConnection

PROGRAM_TYPE_BY_CHANNEL_TYPE = {
    "program": "Default",
    "nurture": "Engagement",
    "event": "Event",
    "webinar": "Event with Webinar",
    "email_batch": "Email",
}


def _cached(connection: MarketoConnection, key: str, loader, *, refresh: bool = False):
    entry = connection.metadata_cache.get(key)
    if entry and not refresh:
        fetched_at = datetime.fromisoformat(entry["fetched_at"])
        if timezone.now() - fetched_at < timedelta(seconds=settings.MARKETO_METADATA_CACHE_SECONDS):
            return entry["data"]

    data = loader()
    connection.metadata_cache[key] = {"fetched_at": timezone.now().isoformat(), "data": data}
    MarketoConnection.objects.filter(pk=connection.pk).update(metadata_cache=connection.metadata_cache)
    return data


def forget(connection: MarketoConnection, key: str):
    if connection.metadata_cache.pop(key, None) is not None:
        MarketoConnection.objects.filter(pk=connection.pk).update(metadata_cache=connection.metadata_cache)


def lead_fields(connection: MarketoConnection, client, *, refresh: bool = False) -> dict[str, dict]:
    """Return the instance's lead fields by REST name: dataType, length, updateable."""

    def load():
        fields = {}
        for item in client.describe_leads():
            name = item.get("name") or (item.get("rest") or {}).get("name")
            if not name:
                continue
            fields[name] = {
                "displayName": item.get("displayName", name),
                "dataType": item.get("dataType", "string"),
                "length": item.get("length"),
                "updateable": item.get("updateable", not (item.get("rest") or {}).get("readOnly", False)),
            }
        return fields

    return _cached(connection, "lead_fields", load, refresh=refresh)


def channels(connection: MarketoConnection, client, *, refresh: bool = False) -> dict[str, dict]:
    """Return channels by name with their program type and statuses."""

    def load():
        result = {}
        for channel in client.browse_channels():
            statuses = [
                {"name": status["name"], "step": int(status.get("step", 0))}
                for status in channel.get("progressionStatuses", [])
            ]
            result[channel["name"]] = {
                "applicableProgramType": channel.get("applicableProgramType", ""),
                "statuses": statuses,
            }
        return result

    return _cached(connection, "channels", load, refresh=refresh)


def program(connection: MarketoConnection, client, program_ref, *, refresh: bool = False) -> dict | None:
    """Return {id, name, channel, type} for a program id or name, or None when it doesn't exist."""
    key = f"program:{program_ref}"

    def load():
        if isinstance(program_ref, int) or str(program_ref).isdigit():
            found = client.get_program(int(program_ref))
        else:
            found = client.get_program_by_name(str(program_ref))
        if not found:
            return None
        return {
            "id": found["id"],
            "name": found["name"],
            "channel": found.get("channel", ""),
            "type": found.get("type", ""),
        }

    return _cached(connection, key, load, refresh=refresh)


def program_statuses(connection: MarketoConnection, client, program_info: dict) -> dict[str, int]:
    """Return the program's channel statuses as {name: step}, for forward-only progression."""
    channel = channels(connection, client).get(program_info["channel"])
    if channel is None:
        channel = channels(connection, client, refresh=True).get(program_info["channel"])
    if channel is None:
        return {}
    return {status["name"]: status["step"] for status in channel["statuses"]}
