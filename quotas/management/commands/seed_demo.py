"""Seed the demo catalogue, a default policy, a demo group and prepared answers (idempotent)."""
from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from dataplane.errors import StoreUnavailableError
from quotas import demo, services
from quotas.models import ModelCatalogueEntry, PreparedResponse, QuotaPolicy


class Command(BaseCommand):
    help = "Seed the demo model catalogue, a default policy, a demo group and prepared answers; publish every user."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            created = self._seed()
            queued = services.policy_publish_request(users=services.users_everyone())
        services.periodic_drain_ensure()
        self.stdout.write(f"Seeded {created} new object(s); {queued} more user policies queued for publishing.")
        try:
            result = services.outbox_drain()
        except StoreUnavailableError as error:
            self.stderr.write(f"Store unavailable, rows stay pending: {error.message}")
            return
        self.stdout.write(f"Published: {result.as_dict()}")

    def _seed(self) -> int:
        created = 0
        _, new = ModelCatalogueEntry.objects.get_or_create(
            model_id=demo.DEMO_MODEL["model_id"], defaults=demo.DEMO_MODEL
        )
        created += new
        for model_id, name, max_tokens, price_in, price_out in demo.BEDROCK_MODELS:
            _, new = ModelCatalogueEntry.objects.get_or_create(
                model_id=model_id,
                defaults={
                    "provider": "bedrock",
                    "display_name": name,
                    "default_max_tokens": max_tokens,
                    "price_in_per_1k": Decimal(price_in),
                    "price_out_per_1k": Decimal(price_out),
                    "enabled": True,
                    "available_to_all": False,
                },
            )
            created += new
        if not QuotaPolicy.objects.filter(is_default=True).exists():
            policy, new = QuotaPolicy.objects.get_or_create(
                name=demo.DEFAULT_POLICY["name"], defaults=demo.DEFAULT_POLICY
            )
            created += new
            services.policy_default_set(policy=policy)
        _, new = Group.objects.get_or_create(name=demo.DEMO_GROUP)
        created += new
        for question, answer in demo.PREPARED_ANSWERS:
            if not PreparedResponse.objects.filter(question=question, model=None).exists():
                services.prepared_save(prepared=PreparedResponse(question=question, answer=answer))
                created += 1
        return created
