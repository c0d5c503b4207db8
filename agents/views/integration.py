"""Settings → Integrations → Marketo: connect, test, disconnect.

Every action runs the shared connection flow in `integrations.marketo.connect`
and shows its ConnectionFlowError message verbatim. Customers can't set a
base URL override; a connection keeps the one staff set in the admin.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from agents.forms import ConnectForm
from agents.permissions import org_admin_required
from integrations.audit import record_change
from integrations.marketo.assets import CONVERSATION_ACTIVITY, FOLDER_NAME, MEETING_ACTIVITY, PROGRAM_NAME
from integrations.marketo.connect import ConnectionFlowError, check_connection, connect_marketo
from integrations.models import MarketoConnection


def settings_home(request):
    return redirect("settings-marketo")


@require_http_methods(["GET", "POST"])
@org_admin_required
def marketo_integration(request, organization):
    connection = MarketoConnection.objects.filter(organization=organization).first()
    flow_error = ""

    if request.method == "POST":
        form = ConnectForm(request.POST)
        if form.is_valid():
            try:
                result = connect_marketo(
                    organization,
                    munchkin_id=form.cleaned_data["munchkin_id"],
                    client_id=form.cleaned_data["client_id"],
                    client_secret=form.cleaned_data["client_secret"],
                    base_url=connection.base_url_override if connection else None,
                    actor=request.user.get_username(),
                )
            except ConnectionFlowError as error:
                flow_error = error.message
                connection = MarketoConnection.objects.filter(organization=organization).first()
            else:
                messages.success(request, result.summary)
                return redirect("settings-marketo")
    else:
        initial = {}
        if connection is not None:
            initial = {"munchkin_id": connection.munchkin_id, "client_id": connection.client_id}
        form = ConnectForm(initial=initial)

    return render(
        request,
        "settings/marketo_integration.html",
        {
            "organization": organization,
            "connection": connection,
            "form": form,
            "flow_error": flow_error,
            "assets": _assets(connection),
        },
    )


@require_POST
@org_admin_required
def test_connection(request, organization):
    connection = MarketoConnection.objects.filter(organization=organization).first()
    if connection is None or not connection.has_client_secret:
        messages.error(request, "Marketo is not connected. Enter the Munchkin Account ID, Client ID and Client Secret, then click Connect.")
        return redirect("settings-marketo")

    try:
        result = check_connection(connection, actor=request.user.get_username())
    except ConnectionFlowError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, result.summary)
    return redirect("settings-marketo")


@require_POST
@org_admin_required
def disconnect(request, organization):
    connection = MarketoConnection.objects.filter(organization=organization).first()
    if connection is None or connection.status == MarketoConnection.Status.DISCONNECTED:
        messages.info(request, "Marketo is already disconnected.")
        return redirect("settings-marketo")

    # The stored secret is cleared so nothing can call Marketo with it again.
    # The ids of the folder, program and types stay for a later reconnect.
    actor = request.user.get_username()
    connection.status = MarketoConnection.Status.DISCONNECTED
    connection.status_message = f"Disconnected by {actor} on {timezone.now():%Y-%m-%d %H:%M} UTC."
    connection.client_secret_encrypted = ""
    connection.save(update_fields=["status", "status_message", "client_secret_encrypted", "updated_at"])
    record_change(
        organization, actor, "marketo.disconnect", "MarketoConnection", str(connection),
        {"status": connection.status, "client_secret_cleared": True},
    )
    messages.success(request, "Marketo is disconnected. Docket stopped writing to it; enter the credentials again to reconnect.")
    return redirect("settings-marketo")


def _assets(connection: MarketoConnection | None) -> list[tuple[str, str, int | None]]:
    """Return (kind, name, Marketo id) for each asset the connection flow created or adopted."""
    if connection is None:
        return []
    program_name = PROGRAM_NAME
    if connection.program_type:
        program_name = f"{PROGRAM_NAME} (type: {connection.program_type}, channel: {connection.channel_name or 'Docket'})"
    return [
        ("Folder", FOLDER_NAME, connection.folder_id),
        ("Program", program_name, connection.program_id),
        ("Custom activity type", CONVERSATION_ACTIVITY.name, connection.conversation_activity_type_id),
        ("Custom activity type", MEETING_ACTIVITY.name, connection.meeting_activity_type_id),
    ]
