"""Stores: where threads, items, attachment records and feedback live. Chosen by DATABASE_URL.

Layout: `base` (the contract and its errors), `rows`, `tables`, `migrations`, `retention`,
`locks` (what both dialects share), then one subpackage per dialect (`sqlite`, `postgres`),
each with its `store`, `schema` and `locks`.
"""

from service.chatkit.store.base import (
    ChatStore,
    StoreConfigurationError,
    StoreUnavailableError,
)
from service.chatkit.store.factory import create_store

__all__ = ["ChatStore", "StoreConfigurationError", "StoreUnavailableError", "create_store"]
