"""Alembic migrations, shipped inside the wheel as ``lizardctl.migrations``."""
