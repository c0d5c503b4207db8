"""Organization scoping for the customer settings pages.

A customer admin has access to exactly one organization, the one their
OrganizationMembership names. Every settings view loads objects through
`organization_for(request)`, so an id from another organization is a 404,
never a page of someone else's data.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect

from agents.models import Organization, OrganizationMembership


def organization_for(request) -> Organization:
    """Return the signed-in user's organization, or raise Http404 when they have none."""
    try:
        membership = request.user.membership
    except (AttributeError, OrganizationMembership.DoesNotExist):
        raise Http404("This account is not an admin of any organization.") from None
    return membership.organization


def org_admin_required(view):
    """Require a signed-in member of an organization; pass it to the view as `organization`.

    Staff without a membership are sent to the Django admin, where they
    manage every organization; anyone else without one gets a 404.
    """

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_staff and not OrganizationMembership.objects.filter(user=request.user).exists():
            return redirect("admin:index")
        organization = organization_for(request)
        return view(request, *args, organization=organization, **kwargs)

    return wrapper
