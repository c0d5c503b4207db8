"""Sign-in for customer admins, with a limit on failed attempts.

After SIGN_IN_MAX_FAILURES failed attempts for one username from one address
within SIGN_IN_LOCKOUT_SECONDS, further attempts are refused until the
window ends, so a password can't be guessed at the speed of the server.
"""

import logging

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _failure_key(username: str, address: str) -> str:
    return f"sign-in-failures:{address}:{username.strip().lower()}"


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = self.data.get("username", "")
        address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        key = _failure_key(username, address)
        if cache.get(key, 0) >= settings.SIGN_IN_MAX_FAILURES:
            logger.warning("auth.sign_in.locked address=%s", address)
            raise forms.ValidationError(
                f"Too many failed sign-in attempts. Wait {settings.SIGN_IN_LOCKOUT_SECONDS // 60} minutes, then try again.", code="locked"
            )
        try:
            return super().clean()
        except forms.ValidationError:
            if not cache.add(key, 1, timeout=settings.SIGN_IN_LOCKOUT_SECONDS):
                cache.incr(key)
            raise


class SignInView(auth_views.LoginView):
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True
