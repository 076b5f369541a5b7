"""Database layer: tables, engines and migrations."""

from ghapp.db.engine import Database, normalise_url

__all__ = ["Database", "normalise_url"]
