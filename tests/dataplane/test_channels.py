import pytest

from dataplane.channels import ChannelNameError, channel_segments, owns_channel

SUB = "0b6a3f4e-0000-4000-8000-00000000a11c"


@pytest.mark.parametrize(
    "channel",
    ["/outbound/*/*", "outbound/x", "/a/b/c/d/e/f", "/outbound/has space", "/outbound/" + "x" * 51, "/outbound//x"],
)
def test_channel_names_break_the_appsync_rules(channel):
    with pytest.raises(ChannelNameError):
        channel_segments(channel)


def test_a_trailing_wildcard_is_a_name_but_owns_nothing():
    assert channel_segments("/outbound/*") == ["outbound", "*"]
    assert not owns_channel(SUB, "/outbound/*", namespace="outbound")


def test_only_the_exact_own_channel_is_owned():
    assert owns_channel(SUB, f"/outbound/{SUB}", namespace="outbound")
    assert not owns_channel(SUB, f"/inbound/{SUB}", namespace="outbound")
    assert not owns_channel(SUB, f"/outbound/{SUB}/more", namespace="outbound")
    assert not owns_channel("", "/outbound/", namespace="outbound")
