"""HTTP: incidents in any JSON-over-HTTP system, described entirely by configuration.

Config:
- `url`, `method` (default POST), `headers` (values may be `${env:NAME}`; a header named
  Authorization or whose name contains "token" or "key" is a secret: masked in logs and errors);
  `urls` / `methods`: per-action overrides of `url` / `method` (e.g. `close: PATCH`).
- `body`: JSON templates per action — `create`, `update`, `note`, `assign`, `close`, `reopen`.
  The create template's strings use the field-mapping grammar with the whole context
  (`${evt/summary}`, `${dev/titleOrId}`, `${python: ...}`) plus `${correlationKey}`; its
  rendering is the integration's default fields, so a notification's field mapping adds,
  overrides or removes top-level keys of the create body. The other templates are rendered
  when the action happens, without the event: `${incident/remoteId}`, `${incident/number}`,
  `${incident/url}`, `${incident/state}`, `${note}` (close, reopen, note), `${assignee}`
  (assign) and `${fields/<name>}` (update). A string that is a single `${...}` keeps the
  value's type (a number stays a number).
- `id_path` (default `id`; null: the correlation key stands for the id), `number_path`,
  `url_path`, `status_path` (default `status`), `assignee_path`: JMESPath on an incident
  object in an answer. `status_map`: remote status → OPEN / ASSIGNED / RESOLVED / CLOSED.
- `status_url` (with `${incident/remoteId}`) enables the `status` capability: one GET per
  incident. `find_url` (with `${correlationKey}`) and `find_path` (JMESPath to the incident
  in its answer, default `@`) enable `find`. Without `find_url`, `find` returns None: a create
  whose answer was lost is then sent again and the remote system may record it twice.
Capabilities are declared from what is configured: an action without a body template is
not supported."""

from __future__ import annotations

import json
import logging
import re
from typing import Any, ClassVar

import jmespath
from jmespath.exceptions import JMESPathError

from incman.domain.mapping import apply_field_mapping, parse_field_mapping
from incman.domain.mapping_context import build_context
from incman.integrations.base import (
    ASSIGN,
    CLOSE,
    CREATE,
    NOTE,
    REOPEN,
    STATUS,
    UPDATE,
    Integration,
    RemoteIncident,
)
from incman.integrations.errors import (
    ConfigurationError,
    IntegrationError,
    NotSupported,
    PermanentError,
)

log = logging.getLogger(__name__)

ACTIONS = (CREATE, UPDATE, NOTE, ASSIGN, CLOSE, REOPEN)
DEFAULT_STATUS_MAP = {
    "new": "OPEN",
    "open": "OPEN",
    "opened": "OPEN",
    "active": "OPEN",
    "in_progress": "ASSIGNED",
    "assigned": "ASSIGNED",
    "acknowledged": "ASSIGNED",
    "resolved": "RESOLVED",
    "closed": "CLOSED",
    "cancelled": "CLOSED",
    "canceled": "CLOSED",
}
INCIDENT_KEYS = {
    "remoteId": "remote_id",
    "number": "number",
    "url": "url",
    "state": "state",
    "remoteState": "remote_state",
}
# Names filled in when the action happens (never by the field-mapping grammar).
_LATE = re.compile(r"\$\{\s*(correlationKey|note|assignee|incident/\w+|fields/[^}\s]+)\s*\}")
_PROTECTED = re.compile("\ue000([^\ue001]+)\ue001")
_SECRET_HEADER = re.compile(r"authorization|token|key|secret|password", re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


def _not_found(exc: PermanentError) -> bool:
    return ": HTTP 404:" in str(exc)


def _walk(value: Any, change: Any) -> Any:
    """`value` with `change` applied to every string in it (keys are left alone)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            new = _walk(item, change)
            if new is not _DROP:
                out[key] = new
        return out
    if isinstance(value, list):
        return [new for item in value if (new := _walk(item, change)) is not _DROP]
    return value


_DROP = object()  # a template value that rendered to removeField


def _late_value(name: str, context: dict[str, Any]) -> Any:
    root, _, rest = name.partition("/")
    value = context.get(root)
    if rest:
        value = value.get(rest) if isinstance(value, dict) else None
    return "" if value is None else value


def fill_late(value: Any, context: dict[str, Any]) -> Any:
    """Substitute `${correlationKey}`, `${incident/...}`, `${note}`, ... in a rendered body."""

    def change(text: str) -> Any:
        whole = _LATE.fullmatch(text) or _PROTECTED.fullmatch(text)
        if whole:
            return _late_value(whole.group(1), context)
        text = _LATE.sub(lambda m: str(_late_value(m.group(1), context)), text)
        return _PROTECTED.sub(lambda m: str(_late_value(m.group(1), context)), text)

    return _walk(value, change)


def render_early(template: Any, context: dict[str, object]) -> Any:
    """The create template rendered with the field-mapping grammar; late names are kept."""

    def change(text: str) -> Any:
        protected = _LATE.sub(lambda m: f"\ue000{m.group(1)}\ue001", text)
        if "\n" not in protected:
            rendered = apply_field_mapping({}, f"v, {protected}", context)
            return rendered.get("v", _DROP)
        lines = [
            apply_field_mapping({}, f"v, {line}", context).get("v", "")
            for line in protected.splitlines()
        ]
        return "\n".join("" if line is None else str(line) for line in lines)

    return _walk(template, change)


def _check_template(action: str, template: Any) -> None:
    def check(text: str) -> str:
        for match in _LATE.finditer(text):
            root, _, rest = match.group(1).partition("/")
            if root == "incident" and rest not in INCIDENT_KEYS:
                raise ConfigurationError(
                    f"http: body.{action}: ${{{match.group(1)}}} is "
                    f"unknown (incident/{', incident/'.join(INCIDENT_KEYS)})"
                )
        rest_text = _LATE.sub("", text)
        if action == CREATE:
            try:
                parse_field_mapping("\n".join(f"v, {line}" for line in rest_text.splitlines()))
            except ValueError as exc:
                raise ConfigurationError(f"http: body.create: {exc}") from None
        elif "${" in rest_text:
            raise ConfigurationError(
                f"http: body.{action}: {text!r}: only ${{incident/...}}, ${{note}}, "
                "${assignee} and ${fields/...} are known here; the event's context is "
                "available in the create template"
            )
        return text

    _walk(template, check)


class HttpIntegration(Integration):
    name = "http"
    required_config = ("url",)
    capabilities = frozenset({CREATE})  # per instance: see __init__
    # Headers carry credentials (Authorization, API keys): the API shows none of them.
    secret_config = Integration.secret_config | {"headers"}
    status_map: ClassVar[dict[str, str]] = DEFAULT_STATUS_MAP

    def __init__(self, config: dict[str, Any], notification_id: str = "", **given: Any) -> None:
        super().__init__(config, notification_id, **given)
        self.bodies: dict[str, Any] = dict(config.get("body") or {})
        unknown = set(self.bodies) - set(ACTIONS)
        if unknown:
            raise ConfigurationError(
                f"http: body: unknown actions {', '.join(sorted(unknown))}"
                f" (known: {', '.join(ACTIONS)})"
            )
        for action, template in self.bodies.items():
            _check_template(action, template)
        if CREATE in self.bodies and not isinstance(self.bodies[CREATE], dict):
            raise ConfigurationError("http: body.create must be a JSON object")
        headers = config.get("headers") or {}
        if not isinstance(headers, dict):
            raise ConfigurationError("http: headers must be a mapping of name to value")
        self.headers = {str(k): str(v) for k, v in headers.items()}
        self.paths = {
            name: self._compile(name, default)
            for name, default in (
                ("id_path", "id"),
                ("number_path", None),
                ("url_path", None),
                ("status_path", "status"),
                ("assignee_path", None),
                ("find_path", "@"),
            )
        }
        caps = {CREATE} | {a for a in self.bodies if a != CREATE}
        if config.get("status_url"):
            caps.add(STATUS)
        self.capabilities = frozenset(caps)  # type: ignore[misc]
        self.status_map = {  # type: ignore[misc]
            **DEFAULT_STATUS_MAP,
            **{str(k).lower(): str(v) for k, v in (config.get("status_map") or {}).items()},
        }

    def _compile(self, name: str, default: str | None) -> Any:
        expr = self.config.get(name, default)
        if expr is None or expr == "":
            return None
        try:
            return jmespath.compile(str(expr))
        except JMESPathError as exc:
            raise ConfigurationError(f"http: {name}: invalid JMESPath: {exc}") from None

    def map_state(self, remote_state: str) -> str:
        return self.status_map.get(str(remote_state).lower(), "OPEN")

    def safe_headers(self) -> dict[str, str]:
        return {k: ("***" if is_secret_header(k) else v) for k, v in self.headers.items()}

    def _scrub(self, text: str) -> str:
        for name, value in self.headers.items():
            if is_secret_header(name) and value:
                text = text.replace(value, "***")
                for part in value.split():
                    text = text.replace(part, "***") if len(part) > 6 else text
        return text

    # -- transport ---------------------------------------------------------------------------
    def _send(self, action: str, url: str, body: Any = None, method: str | None = None) -> Any:
        method = (
            method
            or (self.config.get("methods") or {}).get(action)
            or self.config.get("method")
            or "POST"
        ).upper()
        log.debug("http %s: %s %s headers=%s", action, method, url, self.safe_headers())
        try:
            resp = self.http.request(
                method, url, headers=self.headers, **({} if body is None else {"json": body})
            )
        except IntegrationError as exc:
            exc.args = (self._scrub(str(exc)),)
            raise
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return None

    def _action_url(self, action: str, context: dict[str, Any]) -> str:
        template = (self.config.get("urls") or {}).get(action) or self.config["url"]
        return str(fill_late(str(template), context))

    def _search(self, name: str, document: Any) -> Any:
        expr = self.paths[name]
        return None if expr is None or document is None else expr.search(document)

    def _ref_from(self, item: Any, fallback_id: str = "") -> RemoteIncident | None:
        remote_id = self._search("id_path", item) if self.paths["id_path"] else fallback_id
        if remote_id in (None, "", []):
            return None
        remote_state = self._search("status_path", item)
        remote_state = "" if remote_state is None else str(remote_state)
        number = self._search("number_path", item)
        return RemoteIncident(
            remote_id=str(remote_id),
            number=str(number if number is not None else remote_id),
            url=str(self._search("url_path", item) or ""),
            state=self.map_state(remote_state) if remote_state else "OPEN",
            remote_state=remote_state,
            assignee=str(self._search("assignee_path", item) or ""),
        )

    @staticmethod
    def _incident_context(ref: RemoteIncident) -> dict[str, Any]:
        return {"incident": {key: getattr(ref, attr) for key, attr in INCIDENT_KEYS.items()}}

    # -- fields ------------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        """The create body: the create template rendered with the event, or the base fields
        and the correlation key."""
        base = super().default_fields(event, device, urls)
        if CREATE not in self.bodies:
            return {**base, "correlationKey": "${correlationKey}"}
        return dict(render_early(self.bodies[CREATE], build_context(event, device, urls, base)))

    # -- I/O ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        context = {"correlationKey": correlation_key}
        answer = self._send(CREATE, self._action_url(CREATE, context), fill_late(fields, context))
        ref = self._ref_from(answer, fallback_id=correlation_key)
        if ref is None:
            raise PermanentError(
                f"http: the create answer has no id at {self.config.get('id_path', 'id')!r}: "
                f"{json.dumps(answer)[:200]} (set id_path, or id_path: null to use the "
                "correlation key)"
            )
        return ref

    def find(self, correlation_key: str) -> RemoteIncident | None:
        if not self.config.get("find_url"):
            return None  # nothing to look up with: see the module's docs
        url = str(fill_late(str(self.config["find_url"]), {"correlationKey": correlation_key}))
        try:
            answer = self._send("find", url, method="GET")
        except PermanentError as exc:
            if _not_found(exc):
                return None
            raise
        item = self._search("find_path", answer)
        return self._ref_from(item) if item not in (None, [], {}) else None

    def _act(self, action: str, ref: RemoteIncident, **values: Any) -> None:
        if action not in self.bodies:
            raise NotSupported(f"http: no body.{action} template configured")
        context = {**self._incident_context(ref), **values}
        self._send(
            action, self._action_url(action, context), fill_late(self.bodies[action], context)
        )

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        self._act(UPDATE, ref, fields=fields)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._act(NOTE, ref, note=text)

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        self._act(ASSIGN, ref, assignee=assignee)

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._act(CLOSE, ref, note=note)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._act(REOPEN, ref, note=note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """One GET of `status_url` per incident; one that is gone (404) is left out."""
        if not self.config.get("status_url"):
            raise NotSupported("http: no status_url configured")
        out: dict[str, RemoteIncident] = {}
        for ref in refs:
            url = str(fill_late(str(self.config["status_url"]), self._incident_context(ref)))
            try:
                answer = self._send(STATUS, url, method="GET")
            except PermanentError as exc:
                if _not_found(exc):
                    continue
                raise
            fresh = self._ref_from(answer, fallback_id=ref.remote_id)
            if fresh is not None:
                fresh.remote_id, fresh.number = ref.remote_id, ref.number
                fresh.url = fresh.url or ref.url
                out[ref.remote_id] = fresh
        return out
