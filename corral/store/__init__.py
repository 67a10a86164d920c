"""Write-ahead log + checkpoints: ``open_store("sqlite:///path")`` or ``open_store("memory://")``."""

from __future__ import annotations

from corral.store.base import Store, StoreError
from corral.store.memory import MemoryStore


def open_store(url: str) -> Store:
    """Open a store from its URL: ``sqlite:///abs/path.db``, ``sqlite://rel/path.db`` or ``memory://``."""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        from corral.store.sqlite import SqliteStore

        path = url[len("sqlite://"):]
        if not path:
            raise StoreError("expected sqlite:///path/to/file.db")
        return SqliteStore(path)
    raise StoreError(f"expected a store URL like sqlite:///path/to/state.db or memory://, got {url!r}")


__all__ = ["MemoryStore", "Store", "StoreError", "open_store"]
