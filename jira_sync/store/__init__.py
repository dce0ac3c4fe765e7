"""Persistence: SQLAlchemy models, the session/unit of work, repositories, migrations."""
