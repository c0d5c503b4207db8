"""Read-only staff admin for enrollment rules and the LLM's stored decisions.

Rules are changed through the workspace settings pages and
apply_writeback_config, which raise `version` when the criteria change. An
edit here would skip that, so both models are read-only.
"""

from django.contrib import admin
from django.utils.html import format_html_join

from enrollment.models import EnrollmentDecision, EnrollmentRule


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EnrollmentRule)
class EnrollmentRuleAdmin(ReadOnlyAdmin):
    list_display = ("rule_key", "agent", "slot", "trigger", "program", "status_name", "version", "updated_at")
    list_filter = ("trigger",)
    list_select_related = ("agent",)
    search_fields = ("rule_key", "agent__external_id", "agent__name", "program")
    ordering = ("agent", "slot")


@admin.register(EnrollmentDecision)
class EnrollmentDecisionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "conversation", "rule", "rule_version", "outcome", "model")
    list_filter = ("outcome", "rule")
    list_select_related = ("conversation", "rule")
    search_fields = ("conversation__external_id", "conversation__visitor__email", "conversation__raw_email")
    date_hierarchy = "created_at"
    fields = (
        "rule",
        "rule_version",
        "conversation",
        "outcome",
        "model",
        "reason",
        "evidence_list",
        "error",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="Evidence")
    def evidence_list(self, decision):
        if not decision.evidence:
            return "(none)"
        return format_html_join("", "<li>{}</li>", ((item,) for item in decision.evidence))
