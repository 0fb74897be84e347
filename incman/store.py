"""Triggers and notifications defined over the API live in the database."""

from __future__ import annotations

import logging

from sqlalchemy import select

from incman.db import session_scope
from incman.models import Notification, Trigger

log = logging.getLogger(__name__)


def load_db_objects() -> tuple[dict, dict]:
    """Triggers and notifications stored in the database (invalid rows are logged, skipped)."""
    from incman.catalog import CatalogError, parse_notification, parse_trigger

    triggers = {}
    notifications = {}
    with session_scope() as session:
        for row in session.scalars(select(Trigger)):
            try:
                triggers[row.id] = parse_trigger(
                    {"id": row.id, "enabled": row.enabled, "when": row.when},
                    f"trigger {row.id}",
                    source="api",
                )
            except CatalogError as exc:
                log.error("stored trigger %s is invalid, ignored: %s", row.id, exc)
        for nrow in session.scalars(select(Notification)):
            try:
                notifications[nrow.id] = parse_notification(
                    {**nrow.definition, "id": nrow.id, "integration": nrow.integration,
                     "enabled": nrow.enabled},
                    f"notification {nrow.id}",
                    source="api",
                )
            except CatalogError as exc:
                log.error("stored notification %s is invalid, ignored: %s", nrow.id, exc)
    return triggers, notifications
