import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_sub() -> str:
    return str(uuid.uuid4())


class User(AbstractUser):
    """A person who may use the gateway.

    `sub` is the user's stable id everywhere outside Django: their AppSync channels are named
    after it (`/inbound/<sub>`), the data plane keys policies and usage by it, and the log
    lake records it. It is the Cognito `sub` for users who sign in with Cognito and a random
    UUID for local accounts; it never changes once set.
    """

    sub = models.CharField(
        _("subject id"),
        max_length=64,
        unique=True,
        default=new_sub,
        editable=False,
        help_text=_("Stable id used by the data plane (Cognito sub or a generated UUID)."),
    )

    # The language the user chose with the switch; blank follows the browser's Accept-Language.
    # Kept on the user, not only in a cookie, so it follows them to another browser.
    language = models.CharField(
        _("language"), max_length=10, blank=True, default="", choices=settings.LANGUAGES,
        help_text=_("Blank: the browser's language."),
    )

    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]  # the stubs do not declare AbstractUser.Meta
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.username
