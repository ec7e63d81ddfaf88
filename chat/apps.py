from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from chat import (
            checks,  # noqa: F401 - registers the transport check
            signals,  # noqa: F401 - private conversations end at sign-out
        )
