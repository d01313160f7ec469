"""The store: SQLAlchemy models, the repository the hub writes through, and migrations."""
