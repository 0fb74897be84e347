"""One schema for the configuration: the file and what is stored over the API.

The file is INCMAN_CONFIG; the API stores triggers and notifications. Every section's keys,
trigger conditions, notification options and each plugin's declared config are checked, and
every problem is reported at once, with its path and, for an unknown name, the closest known
one ("did you mean")."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from incman.domain.condition_fields import condition_problems, suggest
from incman.domain.formats.entity_incident import parse_severity_map
from incman.domain.formats.itsm_directory import parse_directory
from incman.domain.lifecycle import Options
from incman.domain.mapping import MappingError, parse_field_mapping
from incman.domain.suppression import SuppressionConfigError, device_suppression, parse_rule
from incman.integrations.config import Problem
from incman.integrations.registry import known_integrations, validate_integration_config

ROLES = ("viewer", "ingest", "operator", "manager", "admin")
TRIGGER_KEYS = ("id", "enabled", "when")
NOTIFICATION_KEYS = (
    "id",
    "integration",
    "enabled",
    "triggers",
    "subscribers",
    "cycletime",
    "options",
    "config",
    "field_mapping",
    "suppression",
)
USER_KEYS = ("name", "role", "groups", "api_key_sha256", "api_key", "password_hash")
ENTITY_INCIDENT_KEYS = ("severity_map", "default_severity")


def _at(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _unknown_keys(raw: Mapping[Any, Any], known: Collection[str], where: str) -> list[Problem]:
    return [Problem(_at(where, k), suggest(str(k), known)) for k in raw if k not in known]


def _ident(raw: Mapping[Any, Any], where: str, key: str = "id") -> list[Problem]:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        return [Problem(_at(where, key), "a non-empty string is required")]
    return []


def _flag(raw: Mapping[Any, Any], where: str, key: str = "enabled") -> list[Problem]:
    if key in raw and not isinstance(raw[key], bool):
        return [Problem(_at(where, key), "must be true or false")]
    return []


def _names(raw: Any, where: str) -> list[Problem]:
    if raw is None or (isinstance(raw, list) and all(isinstance(x, str) for x in raw)):
        return []
    return [Problem(where, "must be a list of strings")]


def _mapping(raw: Any, where: str) -> list[Problem]:
    return [] if isinstance(raw, Mapping) else [Problem(where, "must be a mapping")]


def trigger_problems(raw: Any, where: str = "trigger") -> list[Problem]:
    """Everything wrong with one trigger."""
    if not isinstance(raw, Mapping):
        return _mapping(raw, where)
    out = _unknown_keys(raw, TRIGGER_KEYS, where) + _ident(raw, where) + _flag(raw, where)
    return out + [Problem(p, m) for p, m in condition_problems(raw.get("when"), _at(where, "when"))]


def _options(raw: Any, where: str) -> list[Problem]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return _mapping(raw, where)
    out = _unknown_keys(raw, Options.names(), where)
    known = set(Options.names())
    return out + [
        Problem(_at(where, k), "must be true or false")
        for k, v in raw.items()
        if k in known and not isinstance(v, bool)
    ]


def _plugin_config(integration: Any, raw: Any, where: str) -> list[Problem]:
    names = known_integrations()
    if integration is None:
        return [Problem(_at(where, "integration"), f"is required (one of {', '.join(names)})")]
    if not isinstance(integration, str) or integration not in names:
        shown = str(integration)
        return [Problem(_at(where, "integration"), suggest(shown, names, f"integration {shown!r}"))]
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return _mapping(raw, _at(where, "config"))
    return [
        Problem(_at(_at(where, "config"), p.path) if p.path else _at(where, "config"), p.message)
        for p in validate_integration_config(integration, raw)
    ]


def _text_checks(raw: Mapping[Any, Any], where: str) -> list[Problem]:
    out = []
    cycletime = raw.get("cycletime")
    if cycletime is not None and (
        isinstance(cycletime, bool) or not isinstance(cycletime, int) or cycletime < 1
    ):
        out.append(Problem(_at(where, "cycletime"), "must be a positive integer (seconds)"))
    mapping = raw.get("field_mapping")
    if mapping is not None and not isinstance(mapping, str):
        out.append(Problem(_at(where, "field_mapping"), "must be text"))
    elif mapping:
        try:
            parse_field_mapping(mapping)
        except MappingError as exc:
            out.append(Problem(_at(where, "field_mapping"), str(exc)))
    return out


def _suppression(raw: Any, where: str) -> list[Problem]:
    try:
        parse_rule(raw, where)
    except SuppressionConfigError as exc:
        place, _, message = str(exc).partition(": ")
        return [Problem(place, message)]
    return []


def notification_problems(
    raw: Any, where: str = "notification", triggers: Collection[str] | None = None
) -> list[Problem]:
    """Everything wrong with one notification, its plugin config checked against the
    plugin's declared fields; `triggers`: the trigger ids it may name (None: not checked)."""
    if not isinstance(raw, Mapping):
        return _mapping(raw, where)
    out = _unknown_keys(raw, NOTIFICATION_KEYS, where) + _ident(raw, where) + _flag(raw, where)
    out += _plugin_config(raw.get("integration"), raw.get("config"), where)
    out += _names(raw.get("triggers"), _at(where, "triggers"))
    out += _names(raw.get("subscribers"), _at(where, "subscribers"))
    out += _options(raw.get("options"), _at(where, "options"))
    out += _text_checks(raw, where)
    out += _suppression(raw.get("suppression"), _at(where, "suppression"))
    if triggers is not None and isinstance(raw.get("triggers"), list):
        out += [
            Problem(_at(where, "triggers"), suggest(t, triggers, f"trigger {t!r}"))
            for t in raw["triggers"]
            if isinstance(t, str) and t not in triggers
        ]
    return out


def user_problems(raw: Any, where: str) -> list[Problem]:
    if not isinstance(raw, Mapping):
        return _mapping(raw, where)
    out = _unknown_keys(raw, USER_KEYS, where) + _ident(raw, where, "name")
    role = raw.get("role", "viewer")
    if role not in ROLES:
        out.append(Problem(_at(where, "role"), suggest(str(role), ROLES, f"role {role!r}")))
    out += _names(raw.get("groups"), _at(where, "groups"))
    password_hash = raw.get("password_hash") or ""
    if password_hash and not (
        isinstance(password_hash, str) and password_hash.startswith("$argon2")
    ):
        out.append(
            Problem(
                _at(where, "password_hash"),
                "an Argon2 hash is required (python -m incman.api.console.make_password makes one)",
            )
        )
    return out


def _entity_incidents(raw: Any, where: str = "entity_incidents") -> list[Problem]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return _mapping(raw, where)
    out = _unknown_keys(raw, ENTITY_INCIDENT_KEYS, where)
    try:
        parse_severity_map(dict(raw))
    except ValueError as exc:
        place, _, message = str(exc).partition(": ")
        out.append(Problem(place, message))
    return out


def _device(raw: Any, where: str) -> list[Problem]:
    """A device record's fields are free (`dev.<field>`); its suppression settings are not."""
    if not isinstance(raw, Mapping) or raw.get("id") in (None, ""):
        return [Problem(where, "a mapping with an id is required")]
    try:
        device_suppression(raw, where)
    except SuppressionConfigError as exc:
        return [_split(str(exc))]
    return []


def _itsm(raw: Any) -> list[Problem]:
    """The ITSM Events API's directory (teams, service instances, templates)."""
    try:
        parse_directory(raw)
    except ValueError as exc:
        return [_split(str(exc))]
    return []


def _split(text: str) -> Problem:
    """`path: message` as a Problem."""
    place, _, message = text.partition(": ")
    return Problem(place, message)


def _each(
    doc: Mapping[str, Any], section: str, check: Callable[[Any, str], list[Problem]]
) -> list[Problem]:
    items = doc.get(section)
    if items is None:
        return []
    if not isinstance(items, list):
        return [Problem(section, "must be a list")]
    return [p for i, item in enumerate(items) for p in check(item, f"{section}[{i}]")]


def _duplicates(doc: Mapping[str, Any], section: str, key: str = "id") -> list[Problem]:
    items = doc.get(section)
    seen: set[str] = set()
    out = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        ident = item.get(key) if isinstance(item, Mapping) else None
        if isinstance(ident, str) and ident in seen:
            out.append(Problem(f"{section}[{i}].{key}", f"duplicate {key} {ident!r}"))
        elif isinstance(ident, str):
            seen.add(ident)
    return out


def _trigger_ids(doc: Mapping[str, Any]) -> set[str]:
    items = doc.get("triggers")
    return {
        t["id"]
        for t in (items if isinstance(items, list) else [])
        if isinstance(t, Mapping) and isinstance(t.get("id"), str)
    }


# The top-level sections and how each is checked.
SECTIONS: dict[str, Callable[[Mapping[str, Any]], list[Problem]]] = {
    "triggers": lambda d: _each(d, "triggers", trigger_problems) + _duplicates(d, "triggers"),
    "notifications": lambda d: (
        _each(d, "notifications", lambda r, w: notification_problems(r, w, _trigger_ids(d)))
        + _duplicates(d, "notifications")
    ),
    "devices": lambda d: _each(d, "devices", _device),
    "suppression": lambda d: _suppression(d.get("suppression"), "suppression"),
    "users": lambda d: _each(d, "users", user_problems) + _duplicates(d, "users", "name"),
    "entity_incidents": lambda d: _entity_incidents(d.get("entity_incidents")),
    "itsm": lambda d: _itsm(d.get("itsm")),
}


def file_problems(doc: Any) -> list[Problem]:
    """Everything wrong with a parsed configuration file; [] when it is usable."""
    if doc is None or doc == {}:
        return [Problem("", f"the file declares nothing (top-level keys: {', '.join(SECTIONS)})")]
    if not isinstance(doc, Mapping):
        return [Problem("", "the top level must be a mapping (triggers:, notifications:, ...)")]
    out = [Problem(str(k), suggest(str(k), SECTIONS)) for k in doc if k not in SECTIONS]
    for check in SECTIONS.values():
        out += check(doc)
    return out


def describe(problems: list[Problem]) -> str:
    """The problems one per line, for a person."""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return f"{count}:\n" + "\n".join(f"  {p}" for p in problems)
