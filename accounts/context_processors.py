from accounts.scoping import caller_from_request
from accounts.selectors import organisation_list_for_user


def navigation(request):
    """What the base layout needs to draw the navigation for this person's role."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    caller = caller_from_request(request)
    return {
        "caller": caller,
        "my_organisations": organisation_list_for_user(user=request.user),
    }
