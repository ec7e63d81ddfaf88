"""The gateway's roles, as Django groups, and what each may do in the admin.

`Gateway admins` change everything the gateway governs; `Analysts` only view it and read the
reports. Plain users have no group and no admin at all: they chat.
"""
GATEWAY_ADMINS = "Gateway admins"
ANALYSTS = "Analysts"

# Apps whose models the roles govern. Admins get every permission on them, analysts `view_`.
GOVERNED_APPS: tuple[str, ...] = ("accounts", "quotas", "analytics", "api", "django_celery_beat")
# Single models of other apps the roles govern too: admins manage groups (and the policies
# and allow-lists inlined on them); analysts see them. Both see chat history as counts per
# user (its admin is read-only and never shows a title or a message).
GOVERNED_MODELS: tuple[tuple[str, str], ...] = (("auth", "group"), ("chat", "historyowner"))
