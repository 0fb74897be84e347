"""The configuration objects (CONFIG.md): triggers, notifications, devices, users.

Loaded from `INCMAN_CONFIG` (read-only) and from the database (edited over the API)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from incman.domain.condition import ConditionError, matches, validate_condition
from incman.domain.formats.itsm_directory import Directory, parse_directory
from incman.domain.lifecycle import Options
from incman.domain.mapping import MappingError, parse_field_mapping
from incman.domain.suppression import SuppressionConfigError, device_suppression
from incman.integrations.config import ENV_REF
from incman.integrations.registry import known_integrations
from incman.settings import get_settings
from incman.store.objects import load_db_definitions

log = logging.getLogger(__name__)

ROLES = ("viewer", "ingest", "operator", "manager", "admin")


class CatalogError(ValueError):
    """A configuration that cannot be used, with the place and reason."""


def parse_options(raw: Any, where: str) -> Options:
    if raw is None:
        return Options()
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}.options: must be a mapping")
    known = set(Options.names())
    for key, value in raw.items():
        if key not in known:
            raise CatalogError(f"{where}.options.{key}: unknown option")
        if not isinstance(value, bool):
            raise CatalogError(f"{where}.options.{key}: must be true or false")
    return Options.from_mapping(raw)


@dataclass(frozen=True)
class TriggerDef:
    id: str
    when: dict[str, Any]
    enabled: bool = True
    source: str = "file"

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.enabled and matches(self.when, doc)


@dataclass(frozen=True)
class NotificationDef:
    id: str
    integration: str
    enabled: bool = True
    triggers: tuple[str, ...] = ()
    subscribers: tuple[str, ...] = ()
    cycletime: int | None = None
    options: Options = field(default_factory=Options)
    config: dict[str, Any] = field(default_factory=dict)
    field_mapping: str = ""
    suppression: dict[str, Any] | None = None
    source: str = "file"

    def resolved_config(self) -> dict[str, Any]:
        """The plugin config with `${env:NAME}` references filled in."""
        return _resolve_env(self.config)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["triggers"] = list(self.triggers)
        out["subscribers"] = list(self.subscribers)
        return out


@dataclass(frozen=True)
class UserDef:
    name: str
    role: str
    groups: tuple[str, ...] = ()
    api_key_sha256: str = field(default="", repr=False)
    password_hash: str = field(default="", repr=False)  # Argon2id, for the event console


@dataclass
class Catalog:
    triggers: dict[str, TriggerDef] = field(default_factory=dict)
    notifications: dict[str, NotificationDef] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, UserDef] = field(default_factory=dict)
    suppression: dict[str, Any] = field(default_factory=dict)
    itsm: Directory = field(default_factory=Directory)

    def matching_notifications(
        self, doc: dict[str, Any], device: dict[str, Any] | None = None
    ) -> list[NotificationDef]:
        """Enabled notifications with at least one enabled trigger matching the event
        document, its device record beside it as `dev`."""
        doc = {**doc, "dev": device or {}}
        out = []
        for notif in self.notifications.values():
            if not notif.enabled:
                continue
            for tid in notif.triggers:
                trig = self.triggers.get(tid)
                if trig is not None and trig.matches(doc):
                    out.append(notif)
                    break
        return out

    def has_enabled_trigger(self, notif: NotificationDef) -> bool:
        return any(
            (t := self.triggers.get(tid)) is not None and t.enabled for tid in notif.triggers
        )

    def configuration_view(self) -> dict[str, Any]:
        """What field mapping's `dmd` may read of the configuration: triggers, notifications
        without their plugin config (where secrets live), the global suppression."""
        notifications = {}
        for notif in self.notifications.values():
            doc = notif.to_dict()
            doc.pop("config", None)
            notifications[notif.id] = doc
        return {
            "triggers": {t.id: asdict(t) for t in self.triggers.values()},
            "notifications": notifications,
            "suppression": dict(self.suppression),
        }


def _resolve_env(value: Any) -> Any:
    if isinstance(value, str):
        return ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: _resolve_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v) for v in value]
    return value


def _ident(raw: dict[str, Any], where: str) -> str:
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise CatalogError(f"{where}.id: a non-empty string is required")
    return ident


def parse_trigger(raw: Any, where: str = "trigger", source: str = "file") -> TriggerDef:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a mapping")
    ident = _ident(raw, where)
    when = raw.get("when") or {}
    try:
        validate_condition(when, f"{where}.when")
    except ConditionError as exc:
        raise CatalogError(str(exc)) from exc
    return TriggerDef(id=ident, when=when, enabled=bool(raw.get("enabled", True)), source=source)


def _str_list(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise CatalogError(f"{where}: must be a list of strings")
    return tuple(raw)


def parse_notification(
    raw: Any, where: str = "notification", source: str = "file"
) -> NotificationDef:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a mapping")
    ident = _ident(raw, where)
    integration = raw.get("integration")
    if integration not in known_integrations():
        names = ", ".join(sorted(known_integrations()))
        raise CatalogError(f"{where}.integration: unknown integration {integration!r} ({names})")
    cycletime = raw.get("cycletime")
    if cycletime is not None and (not isinstance(cycletime, int) or cycletime < 1):
        raise CatalogError(f"{where}.cycletime: must be a positive integer (seconds)")
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise CatalogError(f"{where}.config: must be a mapping")
    mapping = raw.get("field_mapping") or ""
    if not isinstance(mapping, str):
        raise CatalogError(f"{where}.field_mapping: must be text")
    try:
        parse_field_mapping(mapping)
    except MappingError as exc:
        raise CatalogError(f"{where}.field_mapping: {exc}") from exc
    suppression = raw.get("suppression")
    if suppression is not None and not isinstance(suppression, dict):
        raise CatalogError(f"{where}.suppression: must be a mapping")
    return NotificationDef(
        id=ident,
        integration=integration,
        enabled=bool(raw.get("enabled", True)),
        triggers=_str_list(raw.get("triggers"), f"{where}.triggers"),
        subscribers=_str_list(raw.get("subscribers"), f"{where}.subscribers"),
        cycletime=cycletime,
        options=parse_options(raw.get("options"), where),
        config=config,
        field_mapping=mapping,
        suppression=suppression,
        source=source,
    )


def parse_user(raw: Any, where: str) -> UserDef:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise CatalogError(f"{where}: a mapping with a name is required")
    role = raw.get("role", "viewer")
    if role not in ROLES:
        raise CatalogError(f"{where}.role: unknown role {role!r} ({', '.join(ROLES)})")
    key_hash = raw.get("api_key_sha256") or ""
    if not key_hash and raw.get("api_key"):
        key_hash = hashlib.sha256(str(raw["api_key"]).encode()).hexdigest()
    password_hash = raw.get("password_hash") or ""
    if password_hash and not (
        isinstance(password_hash, str) and password_hash.startswith("$argon2")
    ):
        raise CatalogError(
            f"{where}.password_hash: an Argon2 hash is required "
            "(python -m incman.api.console.make_password makes one)"
        )
    return UserDef(
        name=raw["name"],
        role=role,
        groups=_str_list(raw.get("groups"), f"{where}.groups"),
        api_key_sha256=str(key_hash).lower(),
        password_hash=password_hash,
    )


def parse_catalog(doc: Any) -> Catalog:
    """Build a Catalog from the parsed YAML document, validating everything."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise CatalogError("configuration: must be a mapping at the top level")
    cat = Catalog()
    for i, raw in enumerate(doc.get("triggers") or []):
        trig = parse_trigger(raw, f"triggers[{i}]")
        if trig.id in cat.triggers:
            raise CatalogError(f"triggers[{i}].id: duplicate id {trig.id!r}")
        cat.triggers[trig.id] = trig
    for i, raw in enumerate(doc.get("notifications") or []):
        notif = parse_notification(raw, f"notifications[{i}]")
        if notif.id in cat.notifications:
            raise CatalogError(f"notifications[{i}].id: duplicate id {notif.id!r}")
        for tid in notif.triggers:
            if tid not in cat.triggers:
                raise CatalogError(f"notifications[{i}].triggers: unknown trigger {tid!r}")
        cat.notifications[notif.id] = notif
    for i, raw in enumerate(doc.get("devices") or []):
        if not isinstance(raw, dict) or not raw.get("id"):
            raise CatalogError(f"devices[{i}]: a mapping with an id is required")
        try:
            device_suppression(raw, f"devices[{i}]")
        except SuppressionConfigError as exc:
            raise CatalogError(str(exc)) from exc
        cat.devices[str(raw["id"])] = dict(raw)
    for i, raw in enumerate(doc.get("users") or []):
        user = parse_user(raw, f"users[{i}]")
        cat.users[user.name] = user
    suppression = doc.get("suppression") or {}
    if not isinstance(suppression, dict):
        raise CatalogError("suppression: must be a mapping")
    cat.suppression = suppression
    try:
        cat.itsm = parse_directory(doc.get("itsm"))
    except ValueError as exc:
        raise CatalogError(str(exc)) from exc
    return cat


DEMO_CONFIG = """\
# The demo configuration: every event of severity Warning or worse opens a Debug incident.
triggers:
  - id: warning-or-worse
    when: {severity: {_gte: 3}}
notifications:
  - id: debug
    integration: debug
    triggers: [warning-or-worse]
    options: {send_clear: true}
"""


def load_file_catalog(path: str) -> Catalog:
    """The catalog declared by the configuration file (or the demo one)."""
    if not path:
        return parse_catalog(yaml.safe_load(DEMO_CONFIG))
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise CatalogError(f"INCMAN_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"INCMAN_CONFIG: {path} is not valid YAML: {exc}") from exc
    return parse_catalog(doc)


class CatalogCache:
    """The file catalog merged with database-defined objects, refreshed every few seconds."""

    def __init__(self, ttl: float = 3.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: Catalog | None = None
        self._file: Catalog | None = None
        self._at = 0.0

    def get(self) -> Catalog:
        now = time.monotonic()
        if self._value is not None and now - self._at < self.ttl:
            return self._value
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl:
                self._value = self._load()
                self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        self._at = 0.0

    def reset(self) -> None:
        self._value = None
        self._file = None
        self._at = 0.0

    def _load(self) -> Catalog:
        if self._file is None:
            self._file = load_file_catalog(get_settings().config_path)
        base = self._file
        triggers, notifications = _parse_db_objects()
        return Catalog(
            triggers={**triggers, **base.triggers},
            notifications={**notifications, **base.notifications},
            devices=base.devices,
            users=base.users,
            suppression=base.suppression,
            itsm=base.itsm,
        )


def _parse_db_objects() -> tuple[dict[str, TriggerDef], dict[str, NotificationDef]]:
    """Triggers and notifications stored over the API (invalid rows are logged, skipped)."""
    raw_triggers, raw_notifications = load_db_definitions()
    triggers: dict[str, TriggerDef] = {}
    notifications: dict[str, NotificationDef] = {}
    for raw in raw_triggers:
        try:
            triggers[raw["id"]] = parse_trigger(raw, f"trigger {raw['id']}", source="api")
        except CatalogError as exc:
            log.error("stored trigger %s is invalid, ignored: %s", raw["id"], exc)
    for raw in raw_notifications:
        try:
            notifications[raw["id"]] = parse_notification(
                raw, f"notification {raw['id']}", source="api"
            )
        except CatalogError as exc:
            log.error("stored notification %s is invalid, ignored: %s", raw["id"], exc)
    return triggers, notifications


catalog_cache = CatalogCache()


def get_catalog() -> Catalog:
    return catalog_cache.get()
