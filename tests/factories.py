from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

if TYPE_CHECKING:
    from accounts.models import User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def groups(self, create: bool, extracted: list[str] | None, **kwargs) -> None:
        if create and extracted:
            for name in extracted:
                group, _ = Group.objects.get_or_create(name=name)
                self.groups.add(group)
        self.save()  # type: ignore[attr-defined]  # factory-boy passes the built User as self


def user_create(**fields: Any) -> User:
    """`UserFactory(...)`, typed as what it builds (factory_boy's own types say the factory)."""
    return cast("User", UserFactory(**fields))
