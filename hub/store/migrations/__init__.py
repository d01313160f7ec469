"""Alembic migrations of the store; run with ``hub db upgrade``."""
