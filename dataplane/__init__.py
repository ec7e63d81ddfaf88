"""The gateway's data plane: one chat turn, its quotas, cache, providers and telemetry.

This package never imports Django. It is what the AWS Lambda functions run, and the Django
Channels consumer calls the very same code in-process, so a user has one quota whichever
door their request came through.
"""
