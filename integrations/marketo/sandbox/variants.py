"""Switchable behaviours for cases Marketo's documentation leaves open.

Each variant has a default (listed first) that is one documented-plausible
reading. The control endpoint `POST /_sandbox/variants` switches them, so a
client can be tested against every reading.
"""

VARIANTS = {
    # According to the 2015 developer blog, the first use of an expired token
    # returns 602 and later uses of the same token return 601.
    "expired_token": ("602_then_601", "602_always"),
    # Creating a program or folder whose name exists is undocumented. Since
    # 2020 duplicate static lists and emails give 709; before that, 611.
    "duplicate_program": ("709", "611"),
    "duplicate_folder": ("709", "611"),
    # A custom activity type with an apiName, triggerName or filterName that
    # exists is undocumented. 1017 is the record code "Object already exists".
    "duplicate_activity_type": ("709", "1017", "611"),
    # Program member calls on a program id that no longer exists: a
    # request-level error with one of these codes, or a per-record 1013.
    "missing_program": ("request_1013", "request_610", "request_709", "record_1013"),
    # "0-20 secondary attributes" versus "Maximum attributes per Custom
    # Activity: 20" (primary included).
    "attribute_limit": ("20_secondary", "20_with_primary"),
    # The documented create-type response has no `id`.
    "type_create_response": ("without_id", "with_id"),
    # describe.json without draft=true on a type never approved.
    "describe_unapproved": ("error_702", "draft"),
    # Program `type` in responses: display form ("Default") as in the docs'
    # examples, or the spec's codes ("program", "nurture").
    "program_type_format": ("display", "code"),
    # "12:00 AM CST": US Central with daylight saving, or a fixed UTC-6.
    "quota_timezone": ("America/Chicago", "UTC-06:00"),
    # Whether calls rejected with 606, 607 or 615 count against the quota and
    # the rate window. The docs only exempt the starred codes, so by default
    # they count.
    "rejected_calls_count": ("count", "no_count"),
    # Sync Program Member Status to a different status with the same step:
    # skipped with 1037 ("already in or past") or moved.
    "same_step_status": ("skip", "update"),
}


def default_variants() -> dict:
    return {name: choices[0] for name, choices in VARIANTS.items()}


def validate_variants(changes: dict) -> list[str]:
    """Return one message per invalid name or value in `changes` (empty when all are valid)."""
    problems = []
    for name, value in changes.items():
        if name not in VARIANTS:
            problems.append(f"Unknown variant {name!r}; known variants: {', '.join(sorted(VARIANTS))}.")
        elif value not in VARIANTS[name]:
            problems.append(f"Invalid value {value!r} for variant {name!r}; use one of: {', '.join(VARIANTS[name])}.")
    return problems
