"""What a field mapping value sees: its contexts, under the seed's names.

`evt`, `dev`, `component`, `dmd`, `urls`, `defaultFields`, `mappingUtils` and `removeField`."""

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
    """The event under its API (camelCase) names; `evid` is an alias of eventId, and `url`
    its link (`${evt/url}`, which the seed's 3.0.0 migrated to `${urls/eventUrl}`)."""

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
    """eventUrl, eventsUrl, deviceUrl, baseUrl, smartViewUrl, ackUrl, closeUrl, reopenUrl."""


class DmdView(ContextView):
    """`dmd`: read-only access to the configuration (`triggers`, `notifications` without
    their plugin config, the global `suppression`) and the devices incman knows (`devices`,
    `findDevice(id)`, also as `Devices.findDevice(id)`). Every read is a copy, so nothing an
    expression does reaches the configuration or another line."""

    def __init__(
        self,
        devices: Mapping[str, Mapping[str, Any]] | None = None,
        configuration: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__({})
        self._devices = devices or {}
        self._configuration = configuration or {}

    def __deepcopy__(self, memo: dict[int, Any]) -> DmdView:
        return self  # immutable from the outside: the copies are made on each read

    def _section(self, name: str) -> Any:
        return copy.deepcopy(self._configuration.get(name) or {})

    @property
    def devices(self) -> dict[str, DeviceView]:
        return {ident: DeviceView(copy.deepcopy(dict(d))) for ident, d in self._devices.items()}

    @property
    def Devices(self) -> DmdView:
        return self

    @property
    def triggers(self) -> Any:
        return self._section("triggers")

    @property
    def notifications(self) -> Any:
        return self._section("notifications")

    @property
    def suppression(self) -> Any:
        return self._section("suppression")

    def findDevice(self, device_id: str) -> DeviceView | None:
        found = self._devices.get(str(device_id))
        return DeviceView(copy.deepcopy(dict(found))) if found is not None else None

    def document(self) -> dict[str, Any]:
        """The same data as plain values, for `${jmespath: ...}`."""
        return {
            "devices": copy.deepcopy({k: dict(v) for k, v in self._devices.items()}),
            "triggers": self.triggers,
            "notifications": self.notifications,
            "suppression": self.suppression,
        }


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
    dmd: DmdView | None = None,
) -> dict[str, object]:
    """The names a mapping value can use (the inputs are copied, never modified)."""
    event = copy.deepcopy(event)
    if "url" not in event and "eventUrl" in urls:
        event["url"] = urls["eventUrl"]  # the seed's ${evt/url}
    device = copy.deepcopy(device) if device is not None else {"id": event.get("device") or ""}
    return {
        "evt": EventView(event),
        "dev": DeviceView(device),
        "component": event.get("component") or "",
        "dmd": dmd if dmd is not None else DmdView(),
        "urls": UrlsView(urls),
        "defaultFields": copy.deepcopy(default_fields),
        "mappingUtils": MappingUtils(urls),
        "removeField": REMOVE_FIELD,
    }
