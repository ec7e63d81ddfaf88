import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


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
        "subject id",
        max_length=64,
        unique=True,
        default=new_sub,
        editable=False,
        help_text="Stable id used by the data plane (Cognito sub or a generated UUID).",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.username
