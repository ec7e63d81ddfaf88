"""Celery tasks of the chat: the daily history purge (scheduled by migration 0002)."""

from __future__ import annotations

from celery import shared_task

HISTORY_PURGE_TASK = "chat.history_expired_purge"


@shared_task(name=HISTORY_PURGE_TASK, soft_time_limit=600, time_limit=660)
def history_expired_purge() -> int:
    from chat.history.services import history_expired_purge as purge

    return purge()
