"""`make run` and the live-server tests serve through `gateway_project.serve`."""
from chat.protocol import MAX_FRAME_BYTES
from gateway_project.serve import daphne_arguments


def test_daphne_takes_every_frame_the_protocol_allows_and_then_some():
    arguments = daphne_arguments(["-b", "127.0.0.1", "-p", "8123"])
    message_limit = int(arguments[arguments.index("--websocket-max-message-size") + 1])
    frame_limit = int(arguments[arguments.index("--websocket-max-frame-size") + 1])
    assert message_limit > MAX_FRAME_BYTES
    assert frame_limit > MAX_FRAME_BYTES
    assert arguments[-1] == "gateway_project.asgi:application"
    assert "8123" in arguments
