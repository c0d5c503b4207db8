"""Staff admin for Marketo connections, the writeback queue, API usage and the audit log.

The client secret is write-only here: its input is never rendered with a
value, a blank input keeps the stored secret, and lists show only whether
one is set. Configuration changes are written to the audit log without it.
"""

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from integrations.audit import record_change
from integrations.marketo.activity_attributes import AttributeRemovalError, attribute_usage, remove_unused_attribute
from integrations.marketo.client import MarketoClient
from integrations.marketo.connect import ConnectionFlowError, check_connection, run_setup
from integrations.marketo.exceptions import MarketoError
from integrations.marketo.quota import calls_today
from integrations.models import (
    ApiUsageDay,
    AuditLogEntry,
    MarketoConnection,
    WritebackBatch,
    WritebackRecord,
)
from integrations.validators import validate_base_url

logger = logging.getLogger(__name__)

# Fields of a connection that the audit log records when staff change them.
AUDITED_CONNECTION_FIELDS = (
    "munchkin_id", "client_id", "base_url_override", "daily_quota", "docket_quota_percent",
    "rate_limit_calls", "rate_limit_window_seconds", "max_concurrent_calls",
)


class ReadOnlyAdminMixin:
    """An admin that shows records but never adds, changes or deletes them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Marketo connections ---------------------------------------------------------

class MarketoConnectionForm(forms.ModelForm):
    """Connection settings for staff: secret write-only, base URL override checked against the allow-list."""

    client_secret = forms.CharField(
        label="Client Secret",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored secret.",
    )

    class Meta:
        model = MarketoConnection
        fields = [
            "munchkin_id", "client_id", "client_secret", "base_url_override",
            "daily_quota", "docket_quota_percent", "rate_limit_calls", "rate_limit_window_seconds",
            "max_concurrent_calls",
        ]
        help_texts = {
            "base_url_override": (
                "Staff only. Scheme, host and port, e.g. http://127.0.0.1:8765; it must be listed in "
                "the MARKETO_ALLOWED_BASE_URLS setting. Leave blank for https://<Munchkin ID>.mktorest.com."
            ),
        }

    def clean_base_url_override(self):
        value = (self.cleaned_data.get("base_url_override") or "").strip()
        if not value:
            return ""
        return validate_base_url(value)

    def clean(self):
        cleaned = super().clean()
        if not self.instance.has_client_secret and not cleaned.get("client_secret"):
            self.add_error("client_secret", "Enter the Client Secret from the LaunchPoint service; no secret is stored yet.")
        return cleaned

    def save(self, commit=True):
        connection = super().save(commit=False)
        secret = self.cleaned_data.get("client_secret")
        if secret:
            connection.set_client_secret(secret)
        if commit:
            connection.save()
        return connection


def connection_audit_changes(form: MarketoConnectionForm) -> dict:
    """Return what staff changed on a connection, for the audit log; the secret only as changed or not."""
    changes = {name: form.cleaned_data.get(name) for name in form.changed_data if name in AUDITED_CONNECTION_FIELDS}
    changes["client_secret_changed"] = bool(form.cleaned_data.get("client_secret"))
    return changes


@admin.display(description="Client Secret")
def secret_state(connection: MarketoConnection) -> str:
    return "set" if connection.has_client_secret else "not set"


def usage_summary(connection: MarketoConnection) -> str:
    """Return Docket's calls today against the quota and its budget, with a link to the full report."""
    if connection.pk is None:
        return "—"
    used = calls_today(connection)
    link = reverse("admin:integrations_marketoconnection_usage", args=[connection.pk])
    attributes_link = reverse("admin:integrations_marketoconnection_attributes", args=[connection.pk])
    return format_html(
        '{} calls today of the {} daily quota; Docket\'s budget is {} ({}%). <a href="{}">Usage report</a>'
        ' · <a href="{}">Activity attributes</a>',
        f"{used:,}", f"{connection.daily_quota:,}", f"{connection.daily_budget:,}",
        connection.docket_quota_percent, link, attributes_link,
    )


def run_connection_action(modeladmin, request, connections, flow, verb: str):
    """Run `flow` (check_connection or run_setup) on each connection and report each outcome."""
    actor = request.user.get_username()
    for connection in connections:
        try:
            result = flow(connection, actor=actor)
        except ConnectionFlowError as error:
            modeladmin.message_user(request, f"{verb} failed for {connection}: {error.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{verb} passed for {connection}: {result.summary}", messages.SUCCESS)


CONNECTION_READONLY_FIELDS = (
    "status", "status_message", "last_error", "usage_warning", "connected_at", "last_checked_at",
    "folder_id", "program_id", "program_type", "channel_name",
    "conversation_activity_type_id", "meeting_activity_type_id", "paused_until", "pause_reason", "api_usage",
)


class ConnectionDetailsMixin:
    readonly_fields = CONNECTION_READONLY_FIELDS

    @admin.display(description="API usage")
    def api_usage(self, connection):
        return usage_summary(connection)


class MarketoConnectionInline(ConnectionDetailsMixin, admin.StackedInline):
    model = MarketoConnection
    form = MarketoConnectionForm
    can_delete = False
    max_num = 1
    extra = 0
    show_change_link = True


@admin.register(MarketoConnection)
class MarketoConnectionAdmin(ConnectionDetailsMixin, admin.ModelAdmin):
    form = MarketoConnectionForm
    list_display = ("organization", "munchkin_id", "client_id", secret_state, "status", "base_url_override", "last_checked_at")
    list_filter = ("status",)
    search_fields = ("organization__slug", "organization__name", "munchkin_id", "client_id")
    actions = ["test_connection", "run_setup_again"]
    fieldsets = (
        (None, {"fields": ("organization", "munchkin_id", "client_id", "client_secret", "base_url_override")}),
        ("API budget", {"fields": ("daily_quota", "docket_quota_percent", "rate_limit_calls",
                                   "rate_limit_window_seconds", "max_concurrent_calls", "api_usage")}),
        ("Status", {"fields": ("status", "status_message", "last_error", "usage_warning", "connected_at",
                               "last_checked_at", "paused_until", "pause_reason")}),
        ("Assets in Marketo", {"fields": ("folder_id", "program_id", "program_type", "channel_name",
                                          "conversation_activity_type_id", "meeting_activity_type_id")}),
    )

    def get_form(self, request, obj=None, **kwargs):
        # The organization is chosen when a connection is added, never moved later.
        kwargs["fields"] = [*MarketoConnectionForm.Meta.fields, *([] if obj else ["organization"])]
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return (*CONNECTION_READONLY_FIELDS, "organization") if obj else CONNECTION_READONLY_FIELDS

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record_change(
            obj.organization, request.user.get_username(),
            "admin.change_connection" if change else "admin.add_connection",
            "MarketoConnection", str(obj), connection_audit_changes(form),
        )

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        run_connection_action(self, request, queryset.select_related("organization"), check_connection, "Test connection")

    @admin.action(description="Run setup again")
    def run_setup_again(self, request, queryset):
        run_connection_action(self, request, queryset.select_related("organization"), run_setup, "Setup")

    def get_urls(self):
        usage = path(
            "<path:object_id>/usage/",
            self.admin_site.admin_view(self.usage_view),
            name="integrations_marketoconnection_usage",
        )
        attributes = path(
            "<path:object_id>/activity-attributes/",
            self.admin_site.admin_view(self.attributes_view),
            name="integrations_marketoconnection_attributes",
        )
        return [usage, attributes, *super().get_urls()]

    def attributes_view(self, request, object_id):
        """Show the Docket Conversation attributes in Marketo and the agents writing each; remove an unused one on POST."""
        connection = get_object_or_404(MarketoConnection.objects.select_related("organization"), pk=object_id)
        if not self.has_view_permission(request, connection):
            raise PermissionDenied

        if request.method == "POST":
            if not self.has_change_permission(request, connection):
                raise PermissionDenied
            api_name = request.POST.get("api_name", "")
            try:
                remove_unused_attribute(connection, api_name, actor=request.user.get_username())
            except AttributeRemovalError as error:
                self.message_user(request, str(error), level=messages.ERROR)
            else:
                self.message_user(request, f"Removed {api_name} from the Docket Conversation activity type.")
            return HttpResponseRedirect(request.path)

        rows, marketo_error = [], ""
        try:
            rows = attribute_usage(connection)
        except MarketoError as error:
            marketo_error = f"The activity type could not be read from Marketo: {error}"
            logger.warning("admin.attributes_read_failed connection=%s error=%s", connection.pk, error)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Docket Conversation attributes of {connection}",
            "opts": self.model._meta,
            "original": connection,
            "connection": connection,
            "rows": rows,
            "slots_used": len(rows),
            "marketo_error": marketo_error,
        }
        return TemplateResponse(request, "admin/integrations/marketoconnection/attributes.html", context)

    def usage_view(self, request, object_id):
        """Docket's calls today against the quota and its budget, and Marketo's own usage report."""
        connection = get_object_or_404(MarketoConnection.objects.select_related("organization"), pk=object_id)
        if not self.has_view_permission(request, connection):
            raise PermissionDenied

        used = calls_today(connection)
        marketo_report, marketo_error = [], ""
        if not connection.has_client_secret:
            marketo_error = "No client secret is stored, so Marketo's usage report can't be read."
        else:
            try:
                marketo_report = MarketoClient.for_connection(connection).get_daily_usage()
            except MarketoError as error:
                marketo_error = f"Marketo's usage report could not be read: {error}"
                logger.warning("admin.usage_report_failed connection=%s error=%s", connection.pk, error)

        context = {
            **self.admin_site.each_context(request),
            "title": f"API usage of {connection}",
            "opts": self.model._meta,
            "original": connection,
            "connection": connection,
            "calls_today": used,
            "percent_of_quota": round(100 * used / connection.daily_quota, 1) if connection.daily_quota else 0,
            "percent_of_budget": round(100 * used / connection.daily_budget, 1) if connection.daily_budget else 0,
            "recent_days": ApiUsageDay.objects.filter(connection=connection)[:7],
            "marketo_report": marketo_report,
            "marketo_error": marketo_error,
        }
        return TemplateResponse(request, "admin/integrations/marketoconnection/usage.html", context)


# --- Writeback queue -----------------------------------------------------------

@admin.register(WritebackRecord)
class WritebackRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "organization", "agent", "action", "status", "email", "marketo_lead_id", "attempts", "created_at")
    list_filter = ("status", "action", "agent", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("email", "conversation__external_id")
    search_help_text = "Search by email, conversation ID or Marketo lead id."
    list_select_related = ("organization", "agent")
    actions = ["retry_selected", "skip_selected"]
    # Records change only through the actions, which keep the queue consistent.
    readonly_fields = [field.name for field in WritebackRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        # The lead id is numeric, so it is matched exactly and only for a numeric term.
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit():
            results = results | queryset.filter(marketo_lead_id=int(term))
        return results, may_have_duplicates

    @admin.action(description="Retry selected", permissions=["change"])
    def retry_selected(self, request, queryset):
        from integrations.writeback.queueing import queue_flush

        # A succeeded activity sent again would be a second activity in Marketo.
        records = queryset.exclude(status__in=[WritebackRecord.Status.IN_FLIGHT, WritebackRecord.Status.SUCCEEDED])
        organization_ids = set(records.values_list("organization_id", flat=True))
        count = records.update(
            status=WritebackRecord.Status.PENDING, attempts=0, not_before=None, completed_at=None,
        )
        connection_ids = MarketoConnection.objects.filter(organization_id__in=organization_ids).values_list("pk", flat=True)
        for connection_id in connection_ids:
            queue_flush(connection_id)
        skipped = queryset.count() - count
        note = f" {skipped} in flight or succeeded were left alone." if skipped else ""
        self.message_user(request, f"Queued {count} record(s) for retry.{note}", messages.SUCCESS)

    @admin.action(description="Skip selected", permissions=["change"])
    def skip_selected(self, request, queryset):
        reason = f"Skipped by {request.user.get_username()}"
        records = queryset.exclude(status__in=[WritebackRecord.Status.IN_FLIGHT, WritebackRecord.Status.SUCCEEDED])
        count = records.update(status=WritebackRecord.Status.SKIPPED, last_error=reason)
        self.message_user(request, f"Skipped {count} record(s); in-flight and succeeded records were left alone.", messages.SUCCESS)


@admin.register(WritebackBatch)
class WritebackBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "connection", "action", "status", "record_count", "sent_at", "finished_at")
    list_filter = ("status", "action")


@admin.register(ApiUsageDay)
class ApiUsageDayAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("connection", "day", "calls", "uncounted_calls", "errors")
    list_filter = ("connection",)
    date_hierarchy = "day"


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "organization", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type", "organization")
    search_fields = ("actor", "object_repr", "action")
    date_hierarchy = "created_at"

