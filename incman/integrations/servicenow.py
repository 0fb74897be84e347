"""ServiceNow: incidents through the Table API (or created through an Import Set).

They are found again by the notification's correlation key in `correlation_id`.

Reference fields (`assigned_to`, `assignment_group`, `caller_id`, ...) given by name are sent
in their own PATCH with `sysparm_input_display_value=true`, so ServiceNow resolves the name
itself: incman never reads `sys_user`, which integration accounts often may not (the seed's
3.0.2 "403 Forbidden" on assign). Choice fields (state, impact, urgency) always go as values."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import CannotReopen, IntegrationError, PermanentError
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


def _text(value: Any) -> str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _plain(value: Any) -> str:
    """A field as read back: a string, or {"value", "link"/"display_value"} for references."""
    if isinstance(value, dict):
        return _text(value.get("value") or value.get("display_value"))
    return _text(value)


class ServiceNowConfig(IntegrationConfig):
    url: str = url_setting(required=True, help="the instance's address")
    username: str = setting("", help="user of HTTP Basic auth")
    password: str = setting("", secret=True, help="its password")
    token: str = setting("", secret=True, help="an OAuth bearer token, instead of a password")
    client_id: str = setting("", help="OAuth client: tokens from oauth_token.do for the user")
    client_secret: str = setting("", secret=True, help="the OAuth client's secret")
    api: str = setting("table", choices=("table", "importset"), help="how incidents are created")
    import_table: str = setting("", help="the Import Set staging table (api: importset)")
    table: str = setting("incident", help="the table of incidents")
    api_version: str = setting("", choices=("", "v1", "v2"), help="empty: the latest")
    final_states: tuple[str, ...] = setting(
        ("7",), required=True, help="states closed for good (read-only: no re-open)"
    )
    resolve_state: str = setting("6", help="the state a close sets")
    reopen_state: str = setting("2", help="the state a re-open sets")
    close_code: str = setting("Solved (Permanently)", help="resolution code sent on close")
    close_notes: str = setting("", help="resolution notes (default: the close note)")
    assignment_group: str = setting("", help="group set on create and assign (name or sys_id)")
    caller: str = setting("", help="caller_id of new incidents (name or sys_id)")
    category: str = setting("inquiry", help="category of new incidents")
    note_field: str = setting(
        "work_notes", choices=("work_notes", "comments"), help="internal or customer-visible"
    )
    user_map: dict[str, str] = setting({}, help="incman user → ServiceNow user (name or sys_id)")

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.token and not (self.username and self.password):
            yield "password", "set username and password, or token"
        if self.client_id and not (self.client_secret and self.username and self.password):
            yield "client_secret", "OAuth needs client_secret, username and password"
        if self.api == "importset" and not self.import_table:
            yield "import_table", "is required with api importset"


class ServiceNowIntegration(Integration[ServiceNowConfig]):
    name = "servicenow"
    capabilities = ALL_CAPABILITIES
    # ServiceNow incident states; "final_states" are CLOSED whatever this map says
    status_map: ClassVar[dict[str, str]] = {
        "1": "OPEN",
        "2": "OPEN",
        "3": "OPEN",
        "6": "RESOLVED",
        "7": "RESOLVED",
        "8": "RESOLVED",
    }

    refresh_token = ""  # of the OAuth login, once made

    def auth(self, session: HttpClient) -> None:
        """Basic, a fixed bearer token, or OAuth: log in with the password grant, refresh
        with the refresh token (and log in again when that ran out too)."""
        session.use_header("Accept", "application/json")
        if self.cfg.client_id:
            session.use_header("Authorization", f"Bearer {self._oauth_token(session)}")
        elif self.cfg.token:
            session.use_header("Authorization", f"Bearer {self.cfg.token}")
        else:
            session.use_basic(self.cfg.username, self.cfg.password)

    def _oauth_token(self, session: HttpClient) -> str:
        cfg = self.cfg
        grant = (
            {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
            if self.refresh_token
            else {"grant_type": "password", "username": cfg.username, "password": cfg.password}
        )
        form = {**grant, "client_id": cfg.client_id, "client_secret": cfg.client_secret}
        try:
            answer = session.json(
                "POST", f"{cfg.url}/oauth_token.do", data=form, headers={"Authorization": None}
            )
        except PermanentError:
            if not self.refresh_token:
                raise
            self.refresh_token = ""
            return self._oauth_token(session)
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise PermanentError("servicenow: oauth_token.do answered no access_token")
        self.refresh_token = str(answer.get("refresh_token") or "")
        return str(answer["access_token"])

    def auth_expired(self, error: IntegrationError) -> bool:
        # OAuth tokens run out (a 401). No logout: ServiceNow hands every login of the user
        # the same token until it expires, so revoking it would log every worker out.
        return bool(self.cfg.client_id) and error.status == 401

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
            if exc.status == 404 and "No Record found" in str(exc):
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

    def find_by_number(self, number: str) -> RemoteIncident | None:
        wanted = number.strip()
        for row in self._list(f"number={wanted.replace('^', '^^')}", 10):
            if _plain(row.get("number")).upper() == wanted.upper():  # the query trap, again
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

    def _state_now(self, ref: RemoteIncident) -> str:
        current = self._result("GET", self._url(ref.remote_id), params={"sysparm_fields": "state"})
        return _plain(current.get("state")) if isinstance(current, dict) else ""

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
            if exc.status != 403:
                raise
            state = self._state_now(ref)
            if state != self.cfg.resolve_state and state not in self.cfg.final_states:
                raise
            log.info("servicenow: %s is already in state %s", ref.number, state)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        """Back to reopen_state; CannotReopen when the incident is in a final state (Closed
        is read-only: ServiceNow answers 403)."""
        body = {"state": self.cfg.reopen_state}
        if note:
            body[self.cfg.note_field] = note
        try:
            self._write(ref.remote_id, body)
        except PermanentError as exc:
            if exc.status != 403:
                raise
            state = self._state_now(ref)
            if state not in self.cfg.final_states:
                raise
            raise CannotReopen(
                f"servicenow: {ref.number} is in final state {state} (read-only)", status=403
            ) from exc

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
