"""ServiceNow: incidents through the Table API (or created through an Import Set), found
again by the notification's correlation key in `correlation_id`.

Reference fields (`assigned_to`, `assignment_group`, `caller_id`, ...) given by name are sent
in their own PATCH with `sysparm_input_display_value=true`, so ServiceNow resolves the name
itself: incman never reads `sys_user`, which integration accounts often may not (the seed's
3.0.2 "403 Forbidden" on assign). Choice fields (state, impact, urgency) always go as values."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import (
    ALL_CAPABILITIES,
    Integration,
    RemoteIncident,
)
from incman.integrations.errors import ConfigurationError, PermanentError
from incman.integrations.http import HttpClient

log = logging.getLogger(__name__)

SYS_ID = re.compile(r"^[0-9a-f]{32}$")
REFERENCE_FIELDS = frozenset(
    {"caller_id", "assigned_to", "assignment_group", "opened_by", "cmdb_ci", "business_service"}
)
READ_FIELDS = "sys_id,number,state,assigned_to,correlation_id"
STATUS_CHUNK = 100
SHORT_DESCRIPTION_MAX = 160
# event severity → (impact, urgency, severity): priority follows from impact and urgency;
# ServiceNow's own severity is 1 High, 2 Medium, 3 Low
SEVERITY_LEVELS = {5: ("1", "1", "1"), 4: ("2", "1", "2"), 3: ("2", "2", "3"), 2: ("3", "2", "3")}
_HTTP_STATUS = re.compile(r": HTTP (\d{3}):")


def http_status(exc: Exception) -> int | None:
    """The HTTP status of a classified error (None for timeouts and connection errors)."""
    found = _HTTP_STATUS.search(str(exc))
    return int(found.group(1)) if found else None


def _text(value: Any) -> str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _plain(value: Any) -> str:
    """A field as read back: a string, or {"value", "link"/"display_value"} for references."""
    if isinstance(value, dict):
        return _text(value.get("value") or value.get("display_value"))
    return _text(value)


def _str_list(raw: Any, name: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        items = [s.strip() for s in raw.split(",")]
    elif isinstance(raw, (list, tuple)):
        items = [_text(s).strip() for s in raw]
    else:
        raise ConfigurationError(f"servicenow: {name} must be a list of states")
    return tuple(s for s in items if s)


@dataclass(frozen=True)
class ServiceNowConfig:
    """The notification's `config` for ServiceNow."""

    url: str
    username: str = ""
    password: str = ""
    token: str = ""
    api: str = "table"  # table | importset
    import_table: str = ""
    table: str = "incident"
    api_version: str = ""  # "" (latest), "v1" or "v2"
    final_states: tuple[str, ...] = ("7",)
    resolve_state: str = "6"
    reopen_state: str = "2"
    close_code: str = "Solved (Permanently)"
    close_notes: str = ""
    assignment_group: str = ""
    caller: str = ""
    category: str = "inquiry"
    note_field: str = "work_notes"  # work_notes (internal) | comments (customer-visible)
    user_map: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ServiceNowConfig:
        url = _text(raw.get("url")).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("servicenow: url must be the instance's http(s) address")
        values = {
            k: _text(raw[k])
            for k in (
                "username",
                "password",
                "token",
                "api",
                "import_table",
                "table",
                "api_version",
                "resolve_state",
                "reopen_state",
                "close_code",
                "close_notes",
                "assignment_group",
                "caller",
                "category",
                "note_field",
            )
            if raw.get(k) is not None
        }
        cfg = cls(
            url=url,
            **values,
            final_states=_str_list(raw.get("final_states", ["7"]), "final_states"),
            user_map={str(k): _text(v) for k, v in (raw.get("user_map") or {}).items()},
        )
        if not cfg.token and not (cfg.username and cfg.password):
            raise ConfigurationError("servicenow: set username and password, or token")
        if cfg.api not in ("table", "importset"):
            raise ConfigurationError("servicenow: api must be table or importset")
        if cfg.api == "importset" and not cfg.import_table:
            raise ConfigurationError("servicenow: api importset needs import_table")
        if cfg.api_version not in ("", "v1", "v2"):
            raise ConfigurationError("servicenow: api_version must be v1 or v2 (or empty)")
        if cfg.note_field not in ("work_notes", "comments"):
            raise ConfigurationError("servicenow: note_field must be work_notes or comments")
        if not cfg.final_states:
            raise ConfigurationError("servicenow: final_states may not be empty")
        return cfg


class ServiceNowIntegration(Integration):
    name = "servicenow"
    capabilities = ALL_CAPABILITIES
    required_config = ("url",)
    # ServiceNow incident states; "final_states" are CLOSED whatever this map says
    status_map: ClassVar[dict[str, str]] = {
        "1": "OPEN",
        "2": "OPEN",
        "3": "OPEN",
        "6": "RESOLVED",
        "7": "RESOLVED",
        "8": "RESOLVED",
    }

    def __init__(self, config: dict[str, Any], notification_id: str = "", **given: Any) -> None:
        super().__init__(config, notification_id, **given)
        self.cfg = ServiceNowConfig.from_dict(config)

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            client = Integration.http.fget(self)  # type: ignore[attr-defined]
            client.session.headers["Accept"] = "application/json"
            if self.cfg.token:
                client.session.headers["Authorization"] = f"Bearer {self.cfg.token}"
            else:
                client.session.auth = (self.cfg.username, self.cfg.password)
        return self._http  # type: ignore[return-value]

    def call_budget(self) -> float:
        return 2 * super().call_budget()  # a create may take two requests

    # -- mapping ---------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        impact, urgency, severity = SEVERITY_LEVELS.get(
            int(event.get("severity", 3)), ("3", "3", "3")
        )
        fields = {
            "short_description": _text(event.get("summary"))[:SHORT_DESCRIPTION_MAX],
            "description": MappingUtils(urls).getDescription(event),
            "impact": impact,
            "urgency": urgency,
            "severity": severity,
            "category": self.cfg.category,
            "correlation_display": "incman",
        }
        if self.cfg.caller:
            fields["caller_id"] = self.cfg.caller
        if self.cfg.assignment_group:
            fields["assignment_group"] = self.cfg.assignment_group
        return fields

    def _state(self, state: str, assignee: str) -> str:
        if state in self.cfg.final_states:
            return "CLOSED"
        mapped = self.map_state(state)
        return "ASSIGNED" if mapped == "OPEN" and assignee else mapped

    def _ref(self, record: dict[str, Any], table: str | None = None) -> RemoteIncident:
        sys_id = _plain(record.get("sys_id"))
        state = _plain(record.get("state"))
        assignee = _plain(record.get("assigned_to"))
        return RemoteIncident(
            remote_id=sys_id,
            number=_plain(record.get("number")),
            url=f"{self.cfg.url}/{table or self.cfg.table}.do?sys_id={sys_id}",
            state=self._state(state, assignee) if state else "OPEN",
            remote_state=state,
            assignee=assignee,
        )

    # -- requests ----------------------------------------------------------------------------
    def _url(self, sys_id: str = "") -> str:
        version = f"/{self.cfg.api_version}" if self.cfg.api_version else ""
        base = f"{self.cfg.url}/api/now{version}/table/{self.cfg.table}"
        return f"{base}/{sys_id}" if sys_id else base

    def _result(self, method: str, url: str, **kwargs: Any) -> Any:
        answer = self.http.json(method, url, **kwargs)
        if not isinstance(answer, dict) or "result" not in answer:
            raise PermanentError(f"servicenow: {method} {url}: no 'result' in the answer")
        return answer["result"]

    def _write(self, sys_id: str, body: dict[str, Any], by_name: bool = False) -> dict[str, Any]:
        params = {"sysparm_fields": READ_FIELDS, "sysparm_exclude_reference_link": "true"}
        if by_name:
            params["sysparm_input_display_value"] = "true"
        result = self._result("PATCH", self._url(sys_id), params=params, json=body)
        return result if isinstance(result, dict) else {}

    def _list(self, query: str, limit: int) -> list[dict[str, Any]]:
        params = {
            "sysparm_query": query,
            "sysparm_fields": READ_FIELDS,
            "sysparm_exclude_reference_link": "true",
            "sysparm_limit": str(limit),
        }
        try:
            rows = self._result("GET", self._url(), params=params)
        except PermanentError as exc:
            # v1 (and the unversioned path on older releases) answers an empty list with 404
            if http_status(exc) == 404 and "No Record found" in str(exc):
                return []
            raise
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    @staticmethod
    def _split(fields: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        """(fields sent as values, reference fields given by name)."""
        plain: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for name, value in fields.items():
            text = _text(value)
            if name in REFERENCE_FIELDS and text and not SYS_ID.match(text):
                by_name[name] = text
            else:
                plain[name] = text
        return plain, by_name

    # -- the contract --------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        body = {**fields, "correlation_id": correlation_key}
        body.setdefault("correlation_display", "incman")
        if self.cfg.api == "importset":
            return self._create_by_import({k: _text(v) for k, v in body.items()})
        plain, by_name = self._split(body)
        params = {"sysparm_fields": READ_FIELDS, "sysparm_exclude_reference_link": "true"}
        record = self._result("POST", self._url(), params=params, json=plain)
        if not isinstance(record, dict) or not record.get("sys_id"):
            raise PermanentError("servicenow: the create answer has no sys_id")
        if by_name:
            record = self._write(_plain(record["sys_id"]), by_name, by_name=True) or record
            for name in by_name:
                if name in record and not _plain(record.get(name)):
                    log.warning(
                        "servicenow: %s %r matched no record on %s",
                        name,
                        by_name[name],
                        _plain(record.get("number")),
                    )
        return self._ref(record)

    def _create_by_import(self, row: dict[str, str]) -> RemoteIncident:
        url = f"{self.cfg.url}/api/now/import/{self.cfg.import_table}"
        answer = self.http.json("POST", url, json=row)
        results = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise PermanentError(
                f"servicenow: import into {self.cfg.import_table}: "
                "no transform result in the answer"
            )
        result = results[0]
        status = _text(result.get("status"))
        if status == "error" or not SYS_ID.match(_text(result.get("sys_id"))):
            reason = result.get("error_message") or result.get("status_message") or status
            raise PermanentError(
                f"servicenow: import into {self.cfg.import_table} failed: {reason}"
            )
        table = _text(result.get("table")) or self.cfg.table
        ref = self._ref({"sys_id": result["sys_id"], "number": result.get("display_value")}, table)
        log.info("servicenow: import set %s: %s %s", answer.get("import_set"), status, ref.number)
        return ref

    def find(self, correlation_key: str) -> RemoteIncident | None:
        key = correlation_key.replace("^", "^^")
        for row in self._list(f"correlation_id={key}^ORDERBYsys_created_on", 10):
            # a misspelled query term is dropped by ServiceNow, not refused: check the key
            if _plain(row.get("correlation_id")) == correlation_key:
                return self._ref(row)
        return None

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        plain, by_name = self._split(fields)
        if plain:
            self._write(ref.remote_id, plain)
        if by_name:
            self._write(ref.remote_id, by_name, by_name=True)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._write(ref.remote_id, {self.cfg.note_field: text})

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """A PATCH of the incident itself, the user given by name (or sys_id)."""
        who = self.cfg.user_map.get(assignee, assignee)
        if not who:
            raise PermanentError(f"servicenow: no assignee given for {ref.number}")
        body = {"assigned_to": who}
        if self.cfg.assignment_group:
            body["assignment_group"] = self.cfg.assignment_group
        record = self._write(
            ref.remote_id, body, by_name=not all(SYS_ID.match(v) for v in body.values())
        )
        if "assigned_to" in record and not _plain(record.get("assigned_to")):
            raise PermanentError(
                f"servicenow: no user {who!r} to assign {ref.number} to "
                "(map incman users with user_map)"
            )

    def close(self, ref: RemoteIncident, note: str) -> None:
        """Resolve (resolve_state) with the close code and notes both mandatory there."""
        body = {
            "state": self.cfg.resolve_state,
            "close_code": self.cfg.close_code,
            "close_notes": self.cfg.close_notes or note or "Closed by incman",
        }
        try:
            self._write(ref.remote_id, body)
        except PermanentError as exc:
            # a retried close may find the incident closed already (read-only: 403)
            if http_status(exc) != 403:
                raise
            current = self._result(
                "GET", self._url(ref.remote_id), params={"sysparm_fields": READ_FIELDS}
            )
            state = _plain(current.get("state")) if isinstance(current, dict) else ""
            if state != self.cfg.resolve_state and state not in self.cfg.final_states:
                raise
            log.info("servicenow: %s is already in state %s", ref.number, state)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        body = {"state": self.cfg.reopen_state}
        if note:
            body[self.cfg.note_field] = note
        try:
            self._write(ref.remote_id, body)
        except PermanentError as exc:
            if http_status(exc) == 403:
                raise PermanentError(
                    f"servicenow: {ref.number} cannot be re-opened (closed "
                    f"incidents are read-only): {exc}"
                ) from exc
            raise

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        ids = list(dict.fromkeys(r.remote_id for r in refs if SYS_ID.match(r.remote_id)))
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), STATUS_CHUNK):
            chunk = ids[start : start + STATUS_CHUNK]
            for row in self._list(f"sys_idIN{','.join(chunk)}", len(chunk)):
                ref = self._ref(row)
                if ref.remote_id in chunk:
                    out[ref.remote_id] = ref
        return out
