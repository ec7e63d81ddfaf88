"""Write synthetic request records into the local lake so reports have something to show."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.lake import lake_write_records, synthetic_records
from analytics.services import lake_today

# Fewer real users than this and demo users are added: a top-users report needs a ranking.
_FEWEST_USERS = 2


class Command(BaseCommand):
    help = "Write synthetic chat-turn records into GATEWAY_LAKE_DIR (the local log lake) for demo reports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=14, help="How many days, ending today (UTC), today included. Default 14."
        )
        parser.add_argument("--turns-per-day", type=int, default=60)
        parser.add_argument("--seed", type=int, default=7, help="Same seed, same records.")
        parser.add_argument("--lake-dir", default=None, help="Default: GATEWAY_LAKE_DIR.")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Write nothing when the lake already holds files (safe to run at every start).",
        )

    def handle(
        self, *args, days: int, turns_per_day: int, seed: int, lake_dir: str | None, if_empty: bool, **options
    ) -> None:
        if days < 1 or turns_per_day < 1:
            raise CommandError("--days and --turns-per-day must be at least 1")
        lake_dir = lake_dir or settings.GATEWAY_LAKE_DIR
        if if_empty and next(Path(lake_dir).rglob("*.parquet"), None) is not None:
            self.stdout.write(f"The lake under {lake_dir} already holds records; nothing written.")
            return
        # Real users' subs, so the "top users" report shows names people recognise.
        subs = list(get_user_model().objects.filter(is_active=True).order_by("id").values_list("sub", flat=True)[:8])
        if len(subs) < _FEWEST_USERS:
            subs += [f"demo-user-{n}" for n in range(1, 5)]
        records = synthetic_records(
            first_day=lake_today() - timedelta(days=days - 1),
            days=days,
            user_subs=subs,
            turns_per_day=turns_per_day,
            seed=seed,
        )
        files = lake_write_records(lake_dir, records)
        self.stdout.write(f"Wrote {len(records)} records in {len(files)} files under {lake_dir}")
