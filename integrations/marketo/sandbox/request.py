"""A parsed sandbox request: path, query and body parameters, JSON body, caller."""

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from .errors import ApiError


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes = b""
    path_params: dict = field(default_factory=dict)
    client: dict | None = None
    form: dict = field(default_factory=dict)

    def param(self, name: str, default=None):
        """Return the first value of a query or form parameter, or `default`."""
        for source in (self.query, self.form):
            values = source.get(name)
            if values:
                return values[0]
        return default

    def has_param(self, name: str) -> bool:
        return name in self.query or name in self.form

    def list_param(self, name: str) -> list[str]:
        """Return a comma-separated (or repeated) parameter as a list of non-empty strings."""
        raw = self.query.get(name) or self.form.get(name) or []
        items = []
        for value in raw:
            items.extend(part.strip() for part in value.split(","))
        return [item for item in items if item]

    def int_param(self, name: str, default: int | None = None) -> int | None:
        value = self.param(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError("1003", f"Invalid value {value!r} for parameter '{name}'; send an integer.") from None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json_body(self):
        """Parse the body as JSON, raising 612 for another content type and 609 for invalid JSON."""
        if self.content_type != "application/json":
            raise ApiError("612", f"Invalid Content Type '{self.content_type or 'none'}'; send application/json.")
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError("609", "Invalid JSON") from None

    def parse_form(self) -> None:
        """Read an application/x-www-form-urlencoded body into `form`, raising 612 otherwise."""
        if not self.body:
            return
        if self.content_type != "application/x-www-form-urlencoded":
            raise ApiError(
                "612", f"Invalid Content Type '{self.content_type or 'none'}'; send application/x-www-form-urlencoded."
            )
        self.form = parse_qs(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def json_param(self, name: str):
        """Return a form or query parameter that carries JSON, or None if absent."""
        value = self.param(name)
        if value in (None, ""):
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ApiError("1003", f"Parameter '{name}' must be JSON, got {value!r}.") from None


def parse_query(query_string: str) -> dict:
    return parse_qs(query_string, keep_blank_values=True)
