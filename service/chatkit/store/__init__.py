"""Stores: where threads, items, attachment records and feedback live. Chosen by DATABASE_URL."""

from service.chatkit.store.base import ChatStore
from service.chatkit.store.factory import create_store

__all__ = ["ChatStore", "create_store"]
