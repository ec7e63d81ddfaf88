"""Republish every user's policy and every prepared response, then drain the outbox now."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dataplane.errors import StoreUnavailableError
from quotas import services


class Command(BaseCommand):
    help = "Republish every user's effective policy and every prepared response to the gateway store."

    def handle(self, *args, **options) -> None:
        try:
            result = services.policy_sync_all()
        except StoreUnavailableError as error:
            raise CommandError(
                f"The gateway store is unavailable; the outbox rows stay pending. {error.message}"
            ) from error
        self.stdout.write(
            f"Synced: {result.policies_queued} user policies and {result.prepared_queued} prepared responses "
            f"republished; {result.pending} still pending."
        )
        if result.failed:
            raise CommandError(f"{result.failed} outbox row(s) failed; see the policy outbox in the admin.")
