"""Sign-in and the workspace settings pages for customer admins."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from agents.views import agent_config, integration
from agents.views.sign_in import SignInView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="settings-home", permanent=False)),
    path("login/", SignInView.as_view(), name="login"),
    # LogoutView accepts POST only (Django 5), so signing out needs the CSRF token.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/", integration.settings_home, name="settings-home"),
    path("settings/integrations/marketo/", integration.marketo_integration, name="settings-marketo"),
    path("settings/integrations/marketo/test/", integration.test_connection, name="settings-marketo-test"),
    path("settings/integrations/marketo/disconnect/", integration.disconnect, name="settings-marketo-disconnect"),
    path("settings/agents/", agent_config.agent_list, name="agent-list"),
    path("settings/agents/<int:pk>/marketo/", agent_config.agent_marketo, name="agent-marketo"),
    path("settings/agents/<int:pk>/marketo/refresh/", agent_config.refresh_marketo_lists, name="agent-marketo-refresh"),
]
