"""In-memory records of one sandbox Marketo instance, and accessors for tests.

All mutation happens while `lock` is held: the HTTP layer takes it around each
endpoint call, and the Python accessors below take it themselves. Datetimes
are stored as epoch seconds and formatted only in responses.
"""

import copy
import threading
import time

from .control import FaultList
from .limits import CallLimiter, LimitSettings
from .seed import SeedError, default_seed
from .seeding import load_into
from .timeutil import format_lead_datetime
from .variants import default_variants, validate_variants


class SandboxState:
    """The data of one instance: clients, tokens, assets, leads, activities, members, usage."""

    def __init__(self, seed: dict | None = None, limits: LimitSettings | None = None, clock=None):
        self.clock = clock or time.time
        self.lock = threading.RLock()
        # The server replaces this with its own URL; asset `url` fields use it.
        self.base_url = "http://127.0.0.1"
        self._seed = copy.deepcopy(seed) if seed is not None else default_seed()
        self._initial_limits = copy.deepcopy(limits or LimitSettings())
        self.reset()

    def reset(self, seed: dict | None = None) -> None:
        """Discard every change and reload the seed (a new one if given)."""
        with self.lock:
            if seed is not None:
                self._seed = copy.deepcopy(seed)
            self.variants = default_variants()
            self.limits = copy.deepcopy(self._initial_limits)
            self.limiter = CallLimiter(self.limits, self.clock, self.variants)
            self.faults = FaultList()

            self.api_clients = {}
            self.tokens = {}
            self.active_tokens = {}
            self.channels = {}
            self.folders = {}
            self.programs = {}
            self.tag_types = {}
            self.lead_fields = {}
            self.leads = {}
            self.email_index = {}
            self.cookies = {}
            self.merged_into = {}
            self.activity_types = {}
            self.standard_activity_types = []
            self.activities = []
            self.members = {}
            self.next_ids = {
                "lead": 1001,
                "folder": 10,
                "program": 1001,
                "channel": 1,
                "activity_type": 100001,
                "activity": 88120001,
            }
            load_into(self, copy.deepcopy(self._seed))

            # A seed may choose variants and override the constructor's limits.
            problems = validate_variants(self._seed.get("variants", {}))
            if problems:
                raise SeedError(" ".join(problems))
            self.variants.update(self._seed.get("variants", {}))

            # Limits may sit under "limits" or at the top level ("daily_quota": 10).
            seeded_limits = {name: self._seed[name] for name in self.limits.as_dict() if name in self._seed}
            seeded_limits.update(self._seed.get("limits", {}))
            problems = self.limits.update(seeded_limits)
            if problems:
                raise SeedError(" ".join(problems))

    def now(self) -> float:
        return self.clock()

    def take_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    # --- the lead email index ------------------------------------------------

    def index_lead(self, record: dict) -> None:
        """Make a lead findable by its current email; call after creating a lead or changing its email.

        A scan of every lead per lookup would make the sandbox, not the
        client, the slowest part of a run with thousands of leads.
        """
        email = str(record["values"].get("email") or "").lower()
        if email:
            self.email_index.setdefault(email, set()).add(record["id"])

    def leads_with_email(self, email: str) -> list[dict]:
        """Return the lead records whose email equals `email` case-insensitively, in id order.

        Entries left behind by a deleted lead, a merge or an email change are
        checked against the lead itself and skipped.
        """
        email_lower = str(email).lower()
        records = []
        for lead_id in sorted(self.email_index.get(email_lower, ())):
            record = self.leads.get(lead_id)
            if record is not None and str(record["values"].get("email") or "").lower() == email_lower:
                records.append(record)
        return records

    # --- accessors for tests -------------------------------------------------

    def lead(self, lead_id: int) -> dict | None:
        """Return a lead's field values with `id`, or None if it does not exist."""
        with self.lock:
            record = self.leads.get(int(lead_id))
            return self._lead_view(record) if record else None

    def find_leads(self, email: str) -> list[dict]:
        """Return the leads whose email matches `email` case-insensitively."""
        with self.lock:
            return [self._lead_view(record) for record in self.leads_with_email(email)]

    def activities_for(self, lead_id: int | None = None, api_name: str | None = None) -> list[dict]:
        """Return stored activities, optionally for one lead and one custom type apiName."""
        with self.lock:
            type_id = None
            if api_name is not None:
                activity_type = self.activity_types.get(api_name)
                type_id = activity_type["id"] if activity_type else -1
            return [
                copy.deepcopy(activity)
                for activity in self.activities
                if (lead_id is None or activity["leadId"] == lead_id)
                and (type_id is None or activity["activityTypeId"] == type_id)
            ]

    def member(self, program_id: int, lead_id: int) -> dict | None:
        with self.lock:
            membership = self.members.get(int(program_id), {}).get(int(lead_id))
            return copy.deepcopy(membership) if membership else None

    def activity_type(self, api_name: str) -> dict | None:
        with self.lock:
            record = self.activity_types.get(api_name)
            return copy.deepcopy(record) if record else None

    def program_by_name(self, name: str) -> dict | None:
        with self.lock:
            for program in self.programs.values():
                if program["name"] == name:
                    return copy.deepcopy(program)
            return None

    def folder_by_name(self, name: str) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(folder) for folder in self.folders.values() if folder["name"] == name]

    def calls_today(self, user: str | None = None) -> int:
        """Return today's counted calls, for one API user or in total."""
        snapshot = self.limiter.snapshot()
        users = snapshot["calls_by_day"].get(self.limiter.today(), {})
        return users.get(user, 0) if user is not None else sum(users.values())

    def _lead_view(self, record: dict) -> dict:
        view = {"id": record["id"], **record["values"]}
        view["createdAt"] = format_lead_datetime(record["createdAt"])
        view["updatedAt"] = format_lead_datetime(record["updatedAt"])
        view["cookies"] = sorted(cookie for cookie, owner in self.cookies.items() if owner == record["id"])
        return view

    def dump(self) -> dict:
        """Return a JSON-ready copy of everything, for `GET /_sandbox/state` and assertions."""
        with self.lock:
            return {
                "munchkin_id": self.munchkin_id,
                "api_clients": [
                    {"client_id": client["client_id"], "user": client["user"], "permissions": sorted(client["permissions"])}
                    for client in self.api_clients.values()
                ],
                "limits": self.limits.as_dict(),
                "variants": dict(self.variants),
                "faults": self.faults.describe(),
                "leads": [self._lead_view(record) for record in self.leads.values()],
                "merged_leads": {str(loser): winner for loser, winner in self.merged_into.items()},
                "activities": [
                    {**copy.deepcopy(activity), "activityDate": format_lead_datetime(activity["activityDate"])}
                    for activity in self.activities
                ],
                "program_members": [
                    {"programId": program_id, "leadId": lead_id, **copy.deepcopy(membership)}
                    for program_id, members in self.members.items()
                    for lead_id, membership in members.items()
                ],
                "activity_types": [copy.deepcopy(record) for record in self.activity_types.values()],
                "channels": copy.deepcopy(list(self.channels.values())),
                "folders": copy.deepcopy(list(self.folders.values())),
                "programs": copy.deepcopy(list(self.programs.values())),
                "tag_types": copy.deepcopy(list(self.tag_types.values())),
                "call_log": self.limiter.call_log(),
                "usage": {
                    "today": self.limiter.today(),
                    "calls_today_by_user": self.limiter.snapshot()["calls_by_day"].get(self.limiter.today(), {}),
                    **self.limiter.snapshot(),
                },
            }
