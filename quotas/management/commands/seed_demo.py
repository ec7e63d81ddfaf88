"""Seed the demo catalogue (replaced by the governance work)."""
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Seed the demo model catalogue, a default policy and a demo group (idempotent)."

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        self.stdout.write("Nothing to seed yet.")
