from tests.chat.conftest import demo_without_delay  # noqa: F401 - the chat tests' fixture, shared
