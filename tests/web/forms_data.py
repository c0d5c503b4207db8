"""POST bodies for the agent's Marketo settings page, built the way the browser submits them."""


def formset(prefix: str, rows: list[dict], initial_count: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial_count),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def agent_page_data(
    *,
    switches=("marketo_enabled", "lead_sync", "activity_sync", "program_enrollment"),
    activity_fields=(),
    analysis=(),
    updates=(),
    rules=(),
    initial_counts=None,
) -> dict:
    """Return the form data of a save: every switch named in `switches` is on."""
    counts = initial_counts or {}
    data = {name: "on" for name in switches}
    data["activity_fields"] = list(activity_fields)
    data.update(formset("analysis", list(analysis), counts.get("analysis", 0)))
    data.update(formset("updates", list(updates), counts.get("updates", 0)))
    data.update(formset("rules", list(rules), counts.get("rules", 0)))
    return data


def rule(trigger="conversation_completed", program="Docket Engagement", status="", criteria="", rule_id=""):
    return {"rule_id": rule_id, "trigger": trigger, "program": program, "status": status, "criteria": criteria}
