"""Compare the store's policies with Django's; exit 1 when they differ, 0 when clean."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dataplane.errors import StoreUnavailableError
from quotas.selectors import policy_drift_list


class Command(BaseCommand):
    help = "Print every difference between the gateway store's policies and Django's (exit 1 if any)."

    def handle(self, *args, **options) -> None:
        try:
            drifts = policy_drift_list()
        except StoreUnavailableError as error:
            raise CommandError(f"The gateway store is unavailable: {error.message}", returncode=2) from error
        for drift in drifts:
            self.stdout.write(drift.describe())
        if drifts:
            raise CommandError(f"{len(drifts)} polic{'y differs' if len(drifts) == 1 else 'ies differ'}.", returncode=1)
        self.stdout.write("No drift: the store matches Django.")
