"""Triggers and notifications defined over the API live in the database: their raw rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from incman.store.db import session_scope
from incman.store.models import Notification, Trigger


def load_db_definitions() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(triggers, notifications) stored in the database, as definitions to parse."""
    with session_scope() as session:
        triggers = [
            {"id": row.id, "enabled": row.enabled, "when": row.when}
            for row in session.scalars(select(Trigger))
        ]
        notifications = [
            {**row.definition, "id": row.id, "integration": row.integration, "enabled": row.enabled}
            for row in session.scalars(select(Notification))
        ]
    return triggers, notifications
