from accounts.roles import ANALYSTS, GATEWAY_ADMINS


def user_is_analyst(user) -> bool:
    """Analysts read reports; gateway admins may too."""
    return bool(
        user.is_authenticated
        and (user.is_superuser or user.groups.filter(name__in=[ANALYSTS, GATEWAY_ADMINS]).exists())
    )
