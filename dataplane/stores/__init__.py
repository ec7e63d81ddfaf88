from dataplane.stores.base import (
    CachedAnswer,
    PreparedAnswer,
    Reservation,
    Store,
    StoreStats,
    TokenCount,
    WindowCharge,
    WindowUsage,
)

__all__ = [
    "CachedAnswer",
    "PreparedAnswer",
    "Reservation",
    "Store",
    "StoreStats",
    "TokenCount",
    "WindowCharge",
    "WindowUsage",
]
