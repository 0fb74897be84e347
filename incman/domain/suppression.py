"""Suppression maths: the rule in force, the key a creation counts under, the sliding window.

The seed's zNotificationSuppression*: at most `threshold_num` incident creations within
`threshold_secs` per key (the event fields named by `dedup_format`, default
`device|component|severity`); beyond that, creation is suppressed. `-1` in either number turns
it off; an event with no device is never suppressed (the seed's 3.0.4). The settings are the
global ones, a notification's own over them, and the device's over both (the seed's are
per-device properties). incman.actions.suppression keeps the same window in Redis (a Lua
script); this module is its reference model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_DEDUP_FORMAT = "device|component|severity"
DISABLED = -1
# Event fields a dedup format may name (the API's names), plus `details.<key>`.
KEY_FIELDS = (
    "device",
    "component",
    "eventClass",
    "eventKey",
    "eventClassKey",
    "severity",
    "summary",
    "message",
    "agent",
    "source",
    "dedupid",
)
_RULE_KEYS = ("threshold_num", "threshold_secs", "dedup_format")
# The seed's per-device property names, accepted on a device beside `suppression:`.
SEED_PROPERTIES = {
    "zNotificationSuppressionThresholdNum": "threshold_num",
    "zNotificationSuppressionThresholdSecs": "threshold_secs",
    "zNotificationSuppressionDedupFormat": "dedup_format",
}


class SuppressionConfigError(ValueError):
    """A suppression setting that cannot be used, with the place and the reason."""


@dataclass(frozen=True)
class SuppressionRule:
    threshold_num: int = DISABLED
    threshold_secs: int = DISABLED
    dedup_format: str = DEFAULT_DEDUP_FORMAT

    @property
    def enabled(self) -> bool:
        return self.threshold_num != DISABLED and self.threshold_secs != DISABLED

    @property
    def key_fields(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.dedup_format.split("|"))


def _threshold(raw: Any, where: str, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SuppressionConfigError(f"{where}: must be an integer (-1 disables)")
    if raw != DISABLED and raw < minimum:
        raise SuppressionConfigError(f"{where}: must be -1 (off) or at least {minimum}")
    return raw


def check_dedup_format(fmt: Any, where: str) -> str:
    """The format, or an error naming the unknown field."""
    if not isinstance(fmt, str) or not fmt.strip():
        raise SuppressionConfigError(f"{where}: must be field names joined by '|'")
    for part in (p.strip() for p in fmt.split("|")):
        if part in KEY_FIELDS or (part.startswith("details.") and len(part) > len("details.")):
            continue
        known = ", ".join(KEY_FIELDS)
        raise SuppressionConfigError(f"{where}: unknown field {part!r} ({known}, details.<key>)")
    return fmt


def parse_rule(raw: Any, where: str, base: SuppressionRule | None = None) -> SuppressionRule:
    """`raw` (a mapping from the configuration) laid over `base`."""
    rule = base or SuppressionRule()
    if raw is None:
        return rule
    if not isinstance(raw, Mapping):
        raise SuppressionConfigError(f"{where}: must be a mapping")
    for key in raw:
        if key not in _RULE_KEYS:
            known = ", ".join(_RULE_KEYS)
            raise SuppressionConfigError(f"{where}.{key}: unknown setting ({known})")
    if "threshold_num" in raw:
        rule = replace(
            rule, threshold_num=_threshold(raw["threshold_num"], f"{where}.threshold_num", 0)
        )
    if "threshold_secs" in raw:
        rule = replace(
            rule, threshold_secs=_threshold(raw["threshold_secs"], f"{where}.threshold_secs", 1)
        )
    if "dedup_format" in raw:
        rule = replace(
            rule, dedup_format=check_dedup_format(raw["dedup_format"], f"{where}.dedup_format")
        )
    return rule


def device_suppression(device: Mapping[str, Any] | None, where: str) -> dict[str, Any] | None:
    """A device's own settings: its `suppression:` mapping and the seed's
    zNotificationSuppression* properties (the same setting twice is an error). Checked."""
    if not device:
        return None
    raw = device.get("suppression")
    if raw is not None and not isinstance(raw, Mapping):
        raise SuppressionConfigError(f"{where}.suppression: must be a mapping")
    out = dict(raw or {})
    for name, key in SEED_PROPERTIES.items():
        if name in device:
            if key in out:
                raise SuppressionConfigError(f"{where}.{name}: {key} is set in suppression too")
            out[key] = device[name]
    if raw is None and not out:
        return None
    parse_rule(out, f"{where}.suppression")
    return out


def effective_rule(
    global_raw: Any,
    override_raw: Any,
    notification_id: str = "",
    device: Mapping[str, Any] | None = None,
) -> SuppressionRule:
    """The global rule (`suppression:` of the configuration), the notification's own settings
    on top, then the device's (inventory), setting by setting."""
    rule = parse_rule(global_raw or None, "suppression")
    rule = parse_rule(override_raw, f"notification {notification_id}.suppression", rule)
    where = f"device {(device or {}).get('id', '')}"
    return parse_rule(device_suppression(device, where), f"{where}.suppression", rule)


def _field_value(doc: Mapping[str, Any], name: str) -> str:
    if name.startswith("details."):
        value = (doc.get("details") or {}).get(name[len("details.") :])
    else:
        value = doc.get(name)
    return "" if value is None else str(value)


def suppression_key(doc: Mapping[str, Any], rule: SuppressionRule) -> str | None:
    """The key the event counts under (API field names), or None: no device, no suppression."""
    if not str(doc.get("device") or "").strip():
        return None
    return "|".join(_field_value(doc, name) for name in rule.key_fields)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    started: bool = False  # this refusal starts a suppression period for its key


@dataclass(frozen=True)
class WindowState:
    """What the window of one key holds: creations (member, time) and the last refusal."""

    creations: tuple[tuple[str, float], ...] = ()
    last_refusal: float | None = None


def admit(
    state: WindowState, member: str, now: float, rule: SuppressionRule
) -> tuple[Decision, WindowState]:
    """Decide one creation of `member` (an event id) at `now` (seconds).

    Creations older than `threshold_secs` leave the window. A member already counted in the
    window is admitted again without counting twice (a retried or re-delivered create). A
    refusal starts a suppression period unless the previous refusal is less than
    `threshold_secs` old: one self-monitoring event per flood, not one per event."""
    if not rule.enabled:
        return Decision(True), state
    horizon = now - rule.threshold_secs
    kept = tuple((m, t) for m, t in state.creations if t > horizon)
    if any(m == member for m, _ in kept):
        return Decision(True), replace(state, creations=kept)
    if len(kept) < rule.threshold_num:
        return Decision(True), replace(state, creations=(*kept, (member, now)))
    suppressing = state.last_refusal is not None and state.last_refusal > horizon
    return Decision(False, started=not suppressing), WindowState(kept, now)
