from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = _("Chat history")

    def ready(self) -> None:
        from chat import (
            checks,  # noqa: F401 - registers the transport check
            signals,  # noqa: F401 - private conversations end at sign-out
        )
