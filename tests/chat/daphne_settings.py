"""Settings for a daphne subprocess started by the chat tests and the chat benchmark.

The test settings, except that the data-plane store and the lake are the ones the parent
process uses (so policies it publishes reach the server) and static files are served.
"""
import os

from gateway_project.settings.test import *  # noqa: F403

GATEWAY_SQLITE_PATH = os.environ["CHAT_LIVE_GATEWAY_SQLITE_PATH"]
GATEWAY_LAKE_DIR = os.environ["CHAT_LIVE_GATEWAY_LAKE_DIR"]
SERVE_STATIC = True
