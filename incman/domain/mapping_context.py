"""What a field mapping value sees: the contexts `evt`, `dev`, `component`, `urls`,
`defaultFields`, `mappingUtils` and `removeField` (the seed's names)."""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from typing import Any

from incman.domain.event import SEVERITY_NAMES

DEFAULT_PRIORITY = 3


class _Sentinel(enum.Enum):
    REMOVE_FIELD = "removeField"


REMOVE_FIELD = _Sentinel.REMOVE_FIELD  # a value yielding it deletes the field


class ContextView:
    """Attribute and item access over a dict; names starting with '_' are never exposed."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._data:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return self._data[name]

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str) or key.startswith("_"):
            raise KeyError(key)
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


class EventView(ContextView):
    """The event under its API (camelCase) names; `evid` is an alias of eventId."""

    @property
    def evid(self) -> Any:
        return self.eventId


class DeviceView(ContextView):
    """An inventory device (id, title, priority, productionState, groups, ...)."""

    @property
    def id(self) -> str:
        return str(self._data.get("id") or "")

    @property
    def title(self) -> str:
        return str(self._data.get("title") or "")

    def titleOrId(self) -> str:
        return self.title or self.id

    def getPriority(self) -> Any:
        priority = self._data.get("priority")
        return DEFAULT_PRIORITY if priority is None else priority

    def getProductionState(self) -> Any:
        return self._data.get("productionState")


class UrlsView(ContextView):
    """eventUrl, eventsUrl, deviceUrl, baseUrl, ackUrl, closeUrl, reopenUrl."""


class MappingUtils:
    """Helpers for `${python: ...}`: getDescription(evt) and getSevString(evt)."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self._urls = dict(urls)

    def getSevString(self, evt: Any) -> str:
        sev = evt if isinstance(evt, int) else evt.get("severity")
        try:
            return SEVERITY_NAMES[int(sev)] if 0 <= int(sev) < len(SEVERITY_NAMES) else "Unknown"
        except (TypeError, ValueError):
            return "Unknown"

    def getDescription(self, evt: Any) -> str:
        data = evt._data if isinstance(evt, ContextView) else evt
        rows = [
            ("Summary", data.get("summary")),
            ("Message", data.get("message")),
            ("Device", data.get("device")),
            ("Component", data.get("component")),
            ("Event Class", data.get("eventClass")),
            ("Severity", self.getSevString(data)),
            ("Count", data.get("count")),
            ("First Seen", data.get("firstTime")),
            ("Last Seen", data.get("lastTime")),
            ("Event URL", self._urls.get("eventUrl")),
        ]
        return "\n".join(f"{label}: {value}" for label, value in rows if value not in (None, ""))


def build_context(
    event: dict[str, Any],
    device: dict[str, Any] | None,
    urls: dict[str, str],
    default_fields: dict[str, Any],
) -> dict[str, object]:
    """The names a mapping value can use (the inputs are copied, never modified)."""
    event = copy.deepcopy(event)
    device = copy.deepcopy(device) if device is not None else {"id": event.get("device") or ""}
    return {
        "evt": EventView(event),
        "dev": DeviceView(device),
        "component": event.get("component") or "",
        "urls": UrlsView(urls),
        "defaultFields": copy.deepcopy(default_fields),
        "mappingUtils": MappingUtils(urls),
        "removeField": REMOVE_FIELD,
    }
