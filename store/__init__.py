"""Data access behind one interface (SQLite embedded default, MongoDB).

Nothing outside this package imports a database driver; handlers reach data only
through the ``Store`` returned by :func:`store.factory.open_store`.
"""
from store.base import Store
from store.errors import EventError

__all__ = ["Store", "EventError"]
