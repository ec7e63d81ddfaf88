"""The embedded default: nothing to install but Python.

SQLite for Django and for the data-plane store, the in-memory channel layer, Celery tasks run
eagerly in the web process, the offline demo model, static files served by the ASGI app.
"""
from gateway_project.settings.base import *  # noqa: F403
from gateway_project.settings.table import reader

setting = reader(mode="local")

# DEBUG stays off by default (base): the embedded default is a product, and no traceback may
# reach a user. Developers set DJANGO_DEBUG=true.
# The table's local-only fallback; production refuses to start without its own secret.
SECRET_KEY = setting("DJANGO_SECRET_KEY")
SERVE_STATIC = True
CELERY_TASK_ALWAYS_EAGER = setting("CELERY_TASK_ALWAYS_EAGER")
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
