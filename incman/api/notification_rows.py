"""What a notification saved over the API becomes.

Its config merged with the stored secrets it left out, parsed, and the row's definition with
secret fields encrypted."""

from __future__ import annotations

from typing import Any

from incman.api.body import ApiError
from incman.domain.secret import merge_secrets, unresolved_masks
from incman.integrations.registry import masked_keys
from incman.store.catalog import Catalog, CatalogError, NotificationDef, parse_notification
from incman.store.models import Notification
from incman.store.secrets import SecretsError, decrypt_config, encrypt_config


def merged_config(doc: dict[str, Any], row: Notification | None) -> Any:
    """The sent config with the stored secrets it left out (or masked) kept; 422 for a mask
    with nothing stored behind it."""
    config = doc.get("config") or {}
    if not isinstance(config, dict) or not isinstance(doc.get("integration"), str):
        return config
    stored: dict[str, Any] = {}
    if row is not None and row.integration == doc["integration"]:
        try:
            stored = decrypt_config(row.definition.get("config") or {})
        except SecretsError as exc:
            raise ApiError(409, "secrets unreadable", str(exc), "config") from exc
    # Kept write-only: the plugin's declared secrets and any key it does not declare.
    config = merge_secrets(config, stored, masked_keys(doc["integration"], config, stored))
    masked = unresolved_masks(config)
    if masked:
        raise ApiError(
            422,
            "invalid notification",
            f"config.{masked[0]}: the mask is not a value; send the secret",
            f"config.{masked[0]}",
        )
    return config


def invalid(kind: str, exc: CatalogError) -> ApiError:
    """422 naming every problem: `detail` joins them, `problems` lists them, `field` is the
    first one's path."""
    problems = exc.problems
    return ApiError(
        422,
        f"invalid {kind}",
        "; ".join(str(p) for p in problems),
        problems[0].path or None,
        [{"path": p.path, "message": p.message} for p in problems],
    )


def parsed_notification(doc: dict[str, Any], config: Any, catalog: Catalog) -> NotificationDef:
    """The notification checked against the configuration's schema, its config against its
    plugin's declared fields and its triggers against the catalog: 422 naming every problem."""
    try:
        return parse_notification(
            {**doc, "config": config}, "", source="api", triggers=catalog.triggers
        )
    except CatalogError as exc:
        raise invalid("notification", exc) from exc


def stored_definition(notif: NotificationDef) -> dict[str, Any]:
    """What the row keeps: the definition less its columns, secret fields encrypted."""
    definition = notif.to_dict()
    for key in ("id", "integration", "enabled", "source"):
        definition.pop(key)
    try:
        definition["config"] = encrypt_config(notif.integration, definition.get("config") or {})
    except SecretsError as exc:
        raise ApiError(422, "invalid notification", str(exc), "config") from exc
    return definition
