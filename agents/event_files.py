"""Reading Docket events from a file: JSON Lines, or one JSON array."""

import json


class EventFileError(Exception):
    """The file as a whole can't be read as events."""


def read_events(text: str) -> tuple[list, list[int], list[dict]]:
    """Return (events, their line or position numbers, rejected lines) from JSON Lines or a JSON array.

    A line that isn't valid JSON is rejected on its own, with its line
    number, so the rest of the file is still accepted.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            events = json.loads(text)
        except (json.JSONDecodeError, ValueError, RecursionError) as error:
            raise EventFileError(f"The file starts like a JSON array but is not valid JSON: {error}.") from None
        if not isinstance(events, list):
            raise EventFileError("The JSON array must contain event objects.")
        return events, list(range(1, len(events) + 1)), []

    events, numbers, rejected = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
            numbers.append(number)
        except json.JSONDecodeError as error:
            rejected.append({"line": number, "reason": f"line {number} is not valid JSON: {error.msg} at column {error.colno}."})
        except (ValueError, RecursionError) as error:
            # Python's parser refuses integers over 4,300 digits and very deep nesting.
            rejected.append({"line": number, "reason": f"line {number} can't be read as JSON: {error}."})
    return events, numbers, rejected
