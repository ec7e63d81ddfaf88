"""The embedded default: nothing to install but Python.

SQLite for Django and for the data-plane store, the in-memory channel layer, Celery tasks run
eagerly in the web process, the offline demo model, static files served by the ASGI app.
"""
from gateway_project.settings.base import *  # noqa: F403
from gateway_project.settings.base import env

# Off by default: the embedded default is a product, and no traceback may reach a user.
# Developers set DJANGO_DEBUG=true.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Only for the embedded default; production refuses to start without its own secret.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-dev-only-not-secret-7d1f0c9a2b")
SERVE_STATIC = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
