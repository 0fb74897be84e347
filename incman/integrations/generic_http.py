"""HTTP: incidents in any JSON-over-HTTP system, described entirely by configuration.

The templates' grammar: HttpConfig, and docs/integrations.md."""

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
    FIND,
    FIND_NUMBER,
    INCIDENT_STATES,
    NOTE,
    REOPEN,
    STATUS,
    UPDATE,
    Integration,
    RemoteIncident,
)
from incman.integrations.config import IntegrationConfig, http_url, setting
from incman.integrations.errors import IntegrationError, NotSupported, PermanentError

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
_LATE = re.compile(r"\$\{\s*(correlationKey|number|note|assignee|incident/\w+|fields/[^}\s]+)\s*\}")
_PROTECTED = re.compile("\ue000([^\ue001]+)\ue001")
_SECRET_HEADER = re.compile(r"authorization|token|key|secret|password", re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


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


class _Refused(ValueError):
    pass


def _check_template(action: str, template: Any) -> None:
    def check(text: str) -> str:
        for match in _LATE.finditer(text):
            root, _, rest = match.group(1).partition("/")
            if root == "incident" and rest not in INCIDENT_KEYS:
                raise _Refused(
                    f"{action}: ${{{match.group(1)}}} is unknown "
                    f"(incident/{', incident/'.join(INCIDENT_KEYS)})"
                )
        rest_text = _LATE.sub("", text)
        if action == CREATE:
            try:
                parse_field_mapping("\n".join(f"v, {line}" for line in rest_text.splitlines()))
            except ValueError as exc:
                raise _Refused(f"create: {exc}") from None
        elif "${" in rest_text:
            raise _Refused(
                f"{action}: {text!r}: only ${{incident/...}}, ${{note}}, ${{assignee}} and "
                "${fields/...} are known here; the event's context is available in the "
                "create template"
            )
        return text

    _walk(template, check)


def _per_action(value: dict[str, Any]) -> str | None:
    unknown = ", ".join(sorted(set(value) - set(ACTIONS)))
    return f"unknown actions {unknown} (known: {', '.join(ACTIONS)})" if unknown else None


def _bodies(value: dict[str, Any]) -> str | None:
    if unknown := _per_action(value):
        return unknown
    if CREATE in value and not isinstance(value[CREATE], dict):
        return "create: must be a JSON object"
    try:
        for action, template in value.items():
            _check_template(action, template)
    except _Refused as exc:
        return str(exc)
    return None


def _jmespath(value: str | None) -> str | None:
    try:
        jmespath.compile(value) if value else None
    except JMESPathError as exc:
        return f"invalid JMESPath: {exc}"
    return None


def _states(value: dict[str, str]) -> str | None:
    bad = sorted(k for k, v in value.items() if v not in INCIDENT_STATES)
    return f"{bad[0]}: must map to one of {', '.join(INCIDENT_STATES)}" if bad else None


def _path(default: str | None, what: str) -> Any:
    return setting(default, check=_jmespath, help=f"JMESPath to {what}")


class HttpConfig(IntegrationConfig):
    """The create template's strings use the field-mapping grammar with the whole context
    (`${evt/summary}`, `${dev/titleOrId}`, `${python: ...}`) plus `${correlationKey}`; its
    rendering is the integration's default fields, so a notification's field mapping adds,
    overrides or removes top-level keys of the create body. The other templates are rendered
    when the action happens, without the event: `${incident/remoteId}`, `${incident/number}`,
    `${incident/url}`, `${incident/state}`, `${note}` (close, reopen, note), `${assignee}`
    (assign) and `${fields/<name>}` (update). A string that is a single `${...}` keeps the
    value's type (a number stays a number). Capabilities follow the configuration: an action
    without a body template, a lookup without its URL, is not supported. A header named
    Authorization, or whose name holds "token", "key", "secret" or "password", is masked in
    logs and errors."""

    url: str = setting(required=True, check=http_url, help="where incidents are sent")
    method: str = setting("POST", help="HTTP method of the actions")
    headers: dict[str, str] = setting(
        {}, secret=True, help="request headers (values may be secrets)"
    )
    urls: dict[str, str] = setting({}, check=_per_action, help="per-action URL")
    methods: dict[str, str] = setting({}, check=_per_action, help="per-action method")
    body: dict[str, Any] = setting({}, check=_bodies, help="JSON templates per action")
    id_path: str | None = _path("id", "the id in an incident (null: the correlation key)")
    number_path: str | None = _path(None, "the number people see (default: the id)")
    url_path: str | None = _path(None, "the incident's browser URL")
    status_path: str | None = _path("status", "the incident's status")
    assignee_path: str | None = _path(None, "the incident's assignee")
    status_map: dict[str, str] = setting(
        {}, check=_states, help="remote status → OPEN / ASSIGNED / RESOLVED / CLOSED"
    )
    status_url: str = setting("", help="GET one incident (${incident/remoteId}): status reads")
    find_url: str = setting("", help="GET by ${correlationKey}: find")
    find_path: str | None = _path("@", "the incident in the find answer")
    find_number_url: str = setting("", help="GET by ${number}: find_by_number")
    find_number_path: str | None = _path("@", "the incident in the find_number_url answer")


class HttpIntegration(Integration[HttpConfig]):
    name = "http"
    capabilities = frozenset({CREATE})  # per instance: see __init__
    status_map: ClassVar[dict[str, str]] = DEFAULT_STATUS_MAP

    def __init__(self, config: Any, notification_id: str = "", **given: Any) -> None:
        super().__init__(config, notification_id, **given)
        self.bodies: dict[str, Any] = dict(self.cfg.body)
        self.headers = dict(self.cfg.headers)
        self.paths = {
            name: jmespath.compile(expr) if (expr := getattr(self.cfg, name)) else None
            for name in HttpConfig.fields
            if name.endswith("_path")
        }
        caps = {CREATE} | {a for a in self.bodies if a != CREATE}
        optional = {STATUS: "status_url", FIND: "find_url", FIND_NUMBER: "find_number_url"}
        caps |= {cap for cap, key in optional.items() if getattr(self.cfg, key)}
        self.capabilities = frozenset(caps)  # type: ignore[misc]
        self.status_map = {  # type: ignore[misc]
            **DEFAULT_STATUS_MAP,
            **{k.lower(): v for k, v in self.cfg.status_map.items()},
        }

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
        method = (method or self.cfg.methods.get(action) or self.cfg.method).upper()
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
        template = self.cfg.urls.get(action) or self.cfg.url
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
                f"http: the create answer has no id at {self.cfg.id_path!r}: "
                f"{json.dumps(answer)[:200]} (set id_path, or id_path: null to use the "
                "correlation key)"
            )
        return ref

    def _lookup(self, url_key: str, path: str, context: dict[str, Any]) -> RemoteIncident | None:
        template = getattr(self.cfg, url_key)
        if not template:
            raise NotSupported(f"http: no {url_key} configured")
        try:
            answer = self._send(url_key, str(fill_late(template, context)), method="GET")
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        item = self._search(path, answer)
        return self._ref_from(item) if item not in (None, [], {}) else None

    def find(self, correlation_key: str) -> RemoteIncident | None:
        return self._lookup("find_url", "find_path", {"correlationKey": correlation_key})

    def find_by_number(self, number: str) -> RemoteIncident | None:
        found = self._lookup("find_number_url", "find_number_path", {"number": number.strip()})
        return found if found is not None and found.number == number.strip() else None

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
        if not self.cfg.status_url:
            raise NotSupported("http: no status_url configured")
        out: dict[str, RemoteIncident] = {}
        for ref in refs:
            url = str(fill_late(self.cfg.status_url, self._incident_context(ref)))
            try:
                answer = self._send(STATUS, url, method="GET")
            except PermanentError as exc:
                if exc.status == 404:
                    continue
                raise
            fresh = self._ref_from(answer, fallback_id=ref.remote_id)
            if fresh is not None:
                fresh.remote_id, fresh.number = ref.remote_id, ref.number
                fresh.url = fresh.url or ref.url
                out[ref.remote_id] = fresh
        return out
