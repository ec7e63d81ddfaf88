from accounts.selectors import user_is_analyst


def roles(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"can_read_reports": user_is_analyst(user), "can_use_admin": user.is_staff}
