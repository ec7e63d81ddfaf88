"""Self-hosted or AWS production: PostgreSQL, Redis, secrets from the environment.

Secrets and addresses have no defaults here (`required_in` in the settings table): a missing one
stops start-up with a message naming the variable (ImproperlyConfigured).
"""
from gateway_project.settings.base import *  # noqa: F403
from gateway_project.settings.base import env, redis_or_local
from gateway_project.settings.table import reader

setting = reader(mode="production")

DEBUG = False
SECRET_KEY = setting("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = setting("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": env.db_url_config(setting("DATABASE_URL"))}
DATABASES["default"]["CONN_MAX_AGE"] = setting("DJANGO_CONN_MAX_AGE")
REDIS_URL = setting("REDIS_URL")
CHANNEL_LAYERS, CACHES = redis_or_local(REDIS_URL)
CELERY_BROKER_URL = setting("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = setting("CELERY_RESULT_BACKEND") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False
ACCOUNT_ALLOW_SIGNUPS = setting("ACCOUNT_ALLOW_SIGNUPS")
ACCOUNT_EMAIL_VERIFICATION = setting("ACCOUNT_EMAIL_VERIFICATION")
EMAIL_BACKEND = setting("DJANGO_EMAIL_BACKEND")

# Static files: collected at build time and served by WhiteNoise from the ASGI app.
MIDDLEWARE = ["whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE]  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# HTTPS everywhere; the load balancer terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = setting("DJANGO_SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = setting("DJANGO_SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
