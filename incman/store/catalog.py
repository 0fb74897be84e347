"""The configuration objects (CONFIG.md): triggers, notifications, devices, users.

Loaded from `INCMAN_CONFIG` (read-only) and from the database (edited over the API)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from incman.domain.condition import matches
from incman.domain.formats.itsm_directory import Directory, parse_directory
from incman.domain.lifecycle import Options
from incman.integrations.config import ENV_REF, Problem
from incman.settings import get_settings
from incman.store.config_schema import (  # noqa: F401 (ROLES: imported from here too)
    ROLES,
    describe,
    file_problems,
    notification_problems,
    trigger_problems,
    user_problems,
)
from incman.store.objects import load_db_definitions
from incman.store.secrets import SecretsError, decrypt_config

log = logging.getLogger(__name__)


class CatalogError(ValueError):
    """A configuration that cannot be used: every problem, each with its place and reason."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [Problem("", message)]

    @classmethod
    def of(cls, problems: list[Problem], what: str = "") -> CatalogError:
        """One error naming them all: inline when there is one, one per line otherwise."""
        prefix = f"{what}: " if what else ""
        if len(problems) == 1:
            return cls(f"{prefix}{problems[0]}", problems)
        return cls(f"{prefix}{describe(problems)}", problems)


def _raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise CatalogError.of(problems)


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


def parse_trigger(raw: Any, where: str = "trigger", source: str = "file") -> TriggerDef:
    """A trigger checked against the schema (incman.store.config_schema): CatalogError
    naming every problem."""
    _raise_problems(trigger_problems(raw, where))
    return TriggerDef(
        id=raw["id"], when=raw.get("when") or {}, enabled=raw.get("enabled", True), source=source
    )


def parse_notification(
    raw: Any,
    where: str = "notification",
    source: str = "file",
    triggers: Collection[str] | None = None,
) -> NotificationDef:
    """A notification checked against the schema, its `config` against its plugin's declared
    fields (`${env:NAME}` values taken as given): CatalogError naming every problem.
    `triggers`: the trigger ids it may name (None: not checked here)."""
    _raise_problems(notification_problems(raw, where, triggers))
    return NotificationDef(
        id=raw["id"],
        integration=raw["integration"],
        enabled=raw.get("enabled", True),
        triggers=tuple(raw.get("triggers") or ()),
        subscribers=tuple(raw.get("subscribers") or ()),
        cycletime=raw.get("cycletime"),
        options=Options.from_mapping(raw.get("options") or {}),
        config=dict(raw.get("config") or {}),
        field_mapping=raw.get("field_mapping") or "",
        suppression=raw.get("suppression"),
        source=source,
    )


def parse_user(raw: Any, where: str) -> UserDef:
    _raise_problems(user_problems(raw, where))
    key_hash = raw.get("api_key_sha256") or ""
    if not key_hash and raw.get("api_key"):
        key_hash = hashlib.sha256(str(raw["api_key"]).encode()).hexdigest()
    return UserDef(
        name=raw["name"],
        role=raw.get("role", "viewer"),
        groups=tuple(raw.get("groups") or ()),
        api_key_sha256=str(key_hash).lower(),
        password_hash=raw.get("password_hash") or "",
    )


def parse_catalog(doc: Any) -> Catalog:
    """Build a Catalog from the parsed YAML document: CatalogError naming every problem of
    the whole document (incman.store.config_schema.file_problems) when it is not usable."""
    _raise_problems(file_problems(doc))
    cat = Catalog()
    for i, raw in enumerate(doc.get("triggers") or []):
        trig = parse_trigger(raw, f"triggers[{i}]")
        cat.triggers[trig.id] = trig
    for i, raw in enumerate(doc.get("notifications") or []):
        notif = parse_notification(raw, f"notifications[{i}]")
        cat.notifications[notif.id] = notif
    for raw in doc.get("devices") or []:  # each checked by file_problems
        cat.devices[str(raw["id"])] = dict(raw)
    for i, raw in enumerate(doc.get("users") or []):
        user = parse_user(raw, f"users[{i}]")
        cat.users[user.name] = user
    cat.suppression = doc.get("suppression") or {}
    cat.itsm = parse_directory(doc.get("itsm"))  # checked by file_problems
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
    try:
        return parse_catalog(doc)
    except CatalogError as exc:  # every problem, under the file's name
        raise CatalogError.of(exc.problems, f"INCMAN_CONFIG {path}") from None


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

    def is_fresh(self) -> bool:
        """True when `get` answers without reading the database."""
        return self._value is not None and time.monotonic() - self._at < self.ttl

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
            if isinstance(raw.get("config"), dict):
                raw = {**raw, "config": decrypt_config(raw["config"])}
            notifications[raw["id"]] = parse_notification(
                raw, f"notification {raw['id']}", source="api"
            )
        except (CatalogError, SecretsError) as exc:
            log.error("stored notification %s is invalid, ignored: %s", raw["id"], exc)
    return triggers, notifications


catalog_cache = CatalogCache()


def get_catalog() -> Catalog:
    return catalog_cache.get()
