"""How long a user's conversations are kept: their effective quota policy decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from quotas.selectors import policy_resolve

# Private conversations go at sign-out; a session that simply expires never signs out, so the
# daily purge takes the ones left this long after their last message.
PRIVATE_LEFTOVER_HOURS = 24


@dataclass(frozen=True)
class Retention:
    days: int | None  # None: kept until the user deletes them; 0: not kept at all

    @property
    def kept(self) -> bool:
        return self.days != 0

    def cutoff(self, *, now: datetime | None = None) -> datetime | None:
        """Conversations whose last activity is before this have expired (None: none expire)."""
        if self.days is None:
            return None
        return (now or timezone.now()) - timedelta(days=self.days)

    def as_wire(self) -> dict[str, Any]:
        return {"kept": self.kept, "days": self.days}


def retention_for(*, user: Any) -> Retention:
    policy = policy_resolve(user=user)
    if policy is None:
        # No policy means the user is refused everything (fails closed): store nothing either.
        return Retention(days=0)
    return Retention(days=policy.history_retention_days)
