"""A ServiceNow simulator: the Table API on `incident` and the Import Set API.

It serves them as the reference describes them (remote-apis.md), on a real HTTP server.

What it keeps like the real instance: INC numbers and 32-hex sys_ids, string values, the
`{"result": ...}` envelope, state/incident_state kept in step, priority from impact and
urgency, work notes and comments as journal entries (read back as ""), close code and notes
mandatory to resolve or close (403 data policy), Closed records read-only (403 ACL),
reference fields (sys_id, or a display value with `sysparm_input_display_value=true`; an
unknown name leaves the field empty), `sysparm_query` with `^` (AND), `=`, `!=`, `IN`,
`STARTSWITH`, `ORDERBY`; an unknown field in a query is dropped silently (the real trap);
an empty list answers 404 on v1 and the unversioned path, 200 `[]` on v2. The integration
account may not read `sys_user` (403): a plugin that looks users up by name fails as the
seed's 3.0.2 bug did. With `client_id` and `client_secret`, `POST /oauth_token.do` (form
fields; grants `password` and `refresh_token`) hands out bearer tokens; the `401` fault
expires them."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from incman.testing.simbase import (
    SimApp,
    SimError,
    SimRequest,
    SimResponse,
    Ticket,
    basic_credentials,
    bearer_token,
)

TABLE_PATH = re.compile(
    r"^/api/now(?:/(?P<version>v1|v2))?/table/(?P<table>[^/]+)"
    r"(?:/(?P<sys_id>[^/]+))?/?$"
)
IMPORT_PATH = re.compile(r"^/api/now(?:/v1)?/import/(?P<table>[^/]+)/?$")
QUERY_TERM = re.compile(
    r"^(?P<field>[a-z][a-z0-9_.]*?)(?P<op>!=|=|NOT IN|IN|STARTSWITH|LIKE)"
    r"(?P<value>.*)$",
    re.S,
)

STATE_LABELS = {
    "1": "New",
    "2": "In Progress",
    "3": "On Hold",
    "6": "Resolved",
    "7": "Closed",
    "8": "Canceled",
}
LEVEL_LABELS = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
CHOICES = {
    "state": STATE_LABELS,
    "incident_state": STATE_LABELS,
    "impact": LEVEL_LABELS,
    "urgency": LEVEL_LABELS,
    "severity": LEVEL_LABELS,
}
REFERENCES = {
    "caller_id": "sys_user",
    "assigned_to": "sys_user",
    "opened_by": "sys_user",
    "resolved_by": "sys_user",
    "closed_by": "sys_user",
    "assignment_group": "sys_user_group",
}
JOURNAL_FIELDS = ("work_notes", "comments")
WRITABLE = frozenset(
    {
        "short_description",
        "description",
        "impact",
        "urgency",
        "state",
        "incident_state",
        "caller_id",
        "category",
        "subcategory",
        "correlation_id",
        "correlation_display",
        "assigned_to",
        "assignment_group",
        "close_code",
        "close_notes",
        "contact_type",
        "cmdb_ci",
        "severity",
        "opened_by",
        *JOURNAL_FIELDS,
    }
)
READ_ONLY_STATES = ("7", "8")
RESOLVED = "6"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _sys_id() -> str:
    return secrets.token_hex(16)


def _failure(status: int, message: str, detail: str | None = None) -> SimError:
    return SimError(status, {"error": {"message": message, "detail": detail}, "status": "failure"})


class ServiceNowSim(SimApp):
    """Options: `username`/`password` (Basic) and `token` (Bearer) accepted, the
    `import_table` staging table (transform into `incident`, coalescing on
    `correlation_id`), the `users` and `groups` that exist, `sys_user_readable`, and an
    OAuth client (`client_id`, `client_secret`)."""

    name = "servicenow"

    def __init__(
        self,
        username: str = "incman",
        password: str = "incman-secret",
        token: str = "",
        import_table: str = "u_incman_incident",
        users: list[str] | str | None = None,
        groups: list[str] | str | None = None,
        sys_user_readable: bool | str = False,
        client_id: str = "",
        client_secret: str = "",
    ) -> None:
        super().__init__()
        self.username, self.password, self.token = username, password, token
        self.client = (client_id, client_secret)
        self.access_tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.import_table = import_table
        self.sys_user_readable = str(sys_user_readable).lower() in ("1", "true", "yes")
        names = users if users is not None else ["admin", username, "oncall1", "oncall2", "tester"]
        self.user_names = names.split(",") if isinstance(names, str) else list(names)
        groups = groups if groups is not None else ["Service Desk", "Network", "Database"]
        self.group_names = groups.split(",") if isinstance(groups, str) else list(groups)
        self.reset()

    def reset(self) -> None:
        self.incidents: dict[str, dict[str, str]] = {}
        self.journal: dict[str, list[dict[str, str]]] = {}
        self.import_sets: list[dict[str, Any]] = []
        self.next_number = 10001
        self.users = {
            _sys_id(): {"user_name": n, "name": n.replace(".", " ").title()}
            for n in dict.fromkeys(self.user_names)
        }
        self.groups = {_sys_id(): {"name": n} for n in dict.fromkeys(self.group_names)}

    # -- auth and errors -------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        if req.path == "/oauth_token.do":
            return True  # the client authenticates in the form
        token = bearer_token(req.headers)
        if token is not None:
            return token in self.access_tokens or (
                bool(self.token) and secrets.compare_digest(token, self.token)
            )
        return basic_credentials(req.headers) == (self.username, self.password)

    def expire_logins(self) -> None:
        self.access_tokens.clear()

    def _oauth(self, req: SimRequest) -> SimResponse:
        form = {k: v[0] for k, v in parse_qs(req.raw.decode(errors="replace")).items()}
        denied = SimResponse(401, {"error_description": "access_denied", "error": "server_error"})
        if not self.client[0] or (form.get("client_id"), form.get("client_secret")) != self.client:
            return denied
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (self.username, self.password):
                return denied
            refresh = secrets.token_urlsafe(24)
            self.refresh_tokens.add(refresh)
        elif grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
            refresh = form["refresh_token"]
        else:
            return denied
        access = secrets.token_urlsafe(24)
        self.access_tokens.add(access)
        return SimResponse(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": 1799,
            },
        )

    def error(self, status: int, message: str) -> SimResponse:
        if status == 401:
            return _failure(
                401, "User Not Authenticated", "Required to provide Auth information"
            ).response
        resp = _failure(status, message).response
        if status == 429:
            resp.headers.update(
                {
                    "X-RateLimit-Limit": "1000",
                    "X-RateLimit-Reset": str(int(time.time()) + 3600),
                    "X-RateLimit-Rule": "a2e4f2c1db1b2010d1d8f1e5ca9619a3",
                }
            )
        return resp

    def describe(self) -> str:
        auth = f"password: {self.password}" if self.password else ""
        if self.token:
            auth += f"{', ' if auth else ''}token: {self.token}"
        return (
            f"ServiceNow simulator at {self.base_url}\n"
            f"  user: {self.username}, {auth}\n"
            f"  incidents: {self.base_url}/api/now/table/incident\n"
            f"  import set staging table: {self.import_table}\n"
            f"  notification config: {{url: {self.base_url}, username: {self.username}, "
            f"password: ...}}"
        )

    # -- routing -----------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        if req.path == "/oauth_token.do" and req.method == "POST":
            return self._oauth(req)
        match = TABLE_PATH.match(req.path)
        if match:
            return self._table(req, match["table"], match["sys_id"], match["version"] or "")
        match = IMPORT_PATH.match(req.path)
        if match and req.method == "POST":
            return self._import(req, match["table"])
        raise _failure(400, "Requested URI does not represent any resource")

    def _table(self, req: SimRequest, table: str, sys_id: str | None, version: str) -> SimResponse:
        if table in ("sys_user", "sys_user_group"):
            if not self.sys_user_readable or req.method != "GET":
                raise _failure(
                    403,
                    "Operation Failed",
                    "ACL Exception Insert/Read Failed due to security constraints",
                )
            rows = self.users if table == "sys_user" else self.groups
            return SimResponse(200, {"result": [{"sys_id": k, **v} for k, v in rows.items()]})
        if table != "incident":
            raise _failure(400, f"Invalid table {table}")
        if req.method == "GET" and sys_id is None:
            return self._list(req, version)
        if req.method == "GET":
            return SimResponse(200, {"result": self._render(self._get(sys_id or ""), req)})
        if req.method == "POST" and sys_id is None:
            record = self._insert(self._body(req), req.flag("sysparm_input_display_value"))
            return SimResponse(
                201,
                {"result": self._render(record, req)},
                {"Location": f"{self.base_url}/api/now/table/incident/{record['sys_id']}"},
            )
        if req.method in ("PATCH", "PUT") and sys_id is not None:
            record = self._get(sys_id)
            self._write(
                record, self._body(req), req.flag("sysparm_input_display_value"), by=self.username
            )
            return SimResponse(200, {"result": self._render(record, req)})
        if req.method == "DELETE" and sys_id is not None:
            self._get(sys_id)
            raise _failure(
                403, "Operation Failed", "ACL Exception Delete Failed due to security constraints"
            )
        raise _failure(405, f"Method {req.method} not allowed here")

    @staticmethod
    def _body(req: SimRequest) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise _failure(400, "Exception while reading request", "The payload is not valid JSON.")
        return req.body

    def _get(self, sys_id: str) -> dict[str, str]:
        record = self.incidents.get(sys_id)
        if record is None:
            raise _failure(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        return record

    # -- writes ------------------------------------------------------------------------------
    def _reference(self, field: str, value: str, display: bool) -> str:
        rows = self.users if REFERENCES[field] == "sys_user" else self.groups
        if not value or value in rows:
            return value
        if not display:
            return value  # stored as given: an invalid reference, shown empty
        for sys_id, row in rows.items():
            if value in (row.get("user_name"), row.get("name")):
                return sys_id
        return ""

    def _value(self, field: str, value: Any, display: bool) -> str:
        text = (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )
        if field in REFERENCES:
            return self._reference(field, text, display)
        if display and field in CHOICES:
            for key, label in CHOICES[field].items():
                if text in (label, label.split(" - ")[-1]):
                    return key
        return text

    def _insert(self, body: dict[str, Any], display: bool, by: str = "") -> dict[str, str]:
        now = _now()
        record = {
            "sys_id": _sys_id(),
            "number": f"INC{self.next_number:07d}",
            "state": "1",
            "incident_state": "1",
            "impact": "3",
            "urgency": "3",
            "priority": "5",
            "active": "true",
            "short_description": "",
            "description": "",
            "caller_id": "",
            "category": "inquiry",
            "correlation_id": "",
            "correlation_display": "",
            "assigned_to": "",
            "assignment_group": "",
            "close_code": "",
            "close_notes": "",
            "work_notes": "",
            "comments": "",
            "opened_at": now,
            "opened_by": "",
            "resolved_at": "",
            "closed_at": "",
            "reopen_count": "0",
            "sys_created_on": now,
            "sys_created_by": by or self.username,
            "sys_updated_on": now,
            "sys_mod_count": "0",
        }
        self.next_number += 1
        record["opened_by"] = self._reference("opened_by", by or self.username, True)
        self.journal[record["sys_id"]] = []
        self._write(record, body, display, by=by or self.username, creating=True)
        self.incidents[record["sys_id"]] = record
        return record

    def _write(
        self,
        record: dict[str, str],
        body: dict[str, Any],
        display: bool,
        by: str,
        creating: bool = False,
        admin: bool = False,
    ) -> None:
        if not creating and not admin and record["state"] in READ_ONLY_STATES:
            raise _failure(
                403, "Operation Failed", "ACL Exception Update Failed due to security constraints"
            )
        changes = {
            k: self._value(k, v, display)
            for k, v in body.items()
            if k in WRITABLE or k.startswith("u_")
        }  # unknown fields: silently ignored
        if "incident_state" in changes and "state" not in changes:
            changes["state"] = changes["incident_state"]
        new = {**record, **{k: v for k, v in changes.items() if k not in JOURNAL_FIELDS}}
        new["incident_state"] = new["state"]
        if (
            new["state"] in (RESOLVED, "7")
            and new["state"] != record["state"]
            and not (new["close_code"] and new["close_notes"])
        ):
            raise _failure(
                403,
                "Operation Failed",
                "Data Policy Exception: The following "
                "fields are mandatory: Resolution code, Resolution notes",
            )
        now = _now()
        if new["state"] != record["state"] and not creating:
            if new["state"] == RESOLVED:
                new["resolved_at"] = now
            elif new["state"] in READ_ONLY_STATES:
                new["closed_at"], new["active"] = now, "false"
            elif record["state"] in (RESOLVED, "7"):
                new["reopen_count"] = str(int(record["reopen_count"]) + 1)
                new["resolved_at"] = ""
        try:
            new["priority"] = str(min(5, max(1, int(new["impact"]) + int(new["urgency"]) - 1)))
        except ValueError:
            new["priority"] = "5"
        new["sys_updated_on"] = now
        new["sys_mod_count"] = str(int(record["sys_mod_count"]) + (0 if creating else 1))
        record.update(new)
        for element in JOURNAL_FIELDS:
            if changes.get(element):
                self.journal[record["sys_id"]].append(
                    {
                        "element": element,
                        "value": changes[element],
                        "sys_created_on": now,
                        "sys_created_by": by,
                    }
                )

    # -- reads -------------------------------------------------------------------------------
    def _display(self, field: str, value: str) -> str:
        if field in REFERENCES:
            rows = self.users if REFERENCES[field] == "sys_user" else self.groups
            row = rows.get(value)
            return str(row.get("name", "")) if row else ""
        if field in CHOICES:
            return CHOICES[field].get(value, value)
        return value

    def _render(self, record: dict[str, str], req: SimRequest) -> dict[str, Any]:
        wanted = [f.strip() for f in req.query.get("sysparm_fields", "").split(",") if f.strip()]
        display = req.query.get("sysparm_display_value", "false").lower()
        no_links = req.flag("sysparm_exclude_reference_link")
        out: dict[str, Any] = {}
        for name in wanted or list(record):
            if name not in record:
                continue  # an unknown field is left out, not an error
            value = record[name]
            shown: Any = value
            if display == "true":
                shown = self._display(name, value)
            elif display == "all":
                shown = {"display_value": self._display(name, value), "value": value}
            if name in REFERENCES and value and not no_links:
                table = REFERENCES[name]
                link = f"{self.base_url}/api/now/table/{table}/{value}"
                shown = (
                    {**shown, "link": link}
                    if isinstance(shown, dict)
                    else {"link": link, "value": shown}
                )
            out[name] = shown
        return out

    def _matches(self, record: dict[str, str], term: str) -> bool:
        found = QUERY_TERM.match(term)
        if not found or found["field"] not in record:
            return True  # the real trap: a term it cannot read is dropped, not refused
        value, actual = found["value"], record[found["field"]]
        op = found["op"]
        if op == "=":
            return actual == value
        if op == "!=":
            return actual != value
        if op in ("IN", "NOT IN"):
            inside = actual in [v.strip() for v in value.split(",")]
            return inside if op == "IN" else not inside
        if op == "STARTSWITH":
            return actual.startswith(value)
        return value.lower() in actual.lower()  # LIKE

    def _list(self, req: SimRequest, version: str) -> SimResponse:
        query = req.query.get("sysparm_query", "")
        terms = [t for t in query.replace("^^", "\x00").split("^") if t]
        order: tuple[str, bool] | None = None
        filters = []
        for term in (t.replace("\x00", "^") for t in terms):
            if term.startswith("ORDERBYDESC"):
                order = (term[len("ORDERBYDESC") :], True)
            elif term.startswith("ORDERBY"):
                order = (term[len("ORDERBY") :], False)
            elif term.startswith("OR") or term.startswith("NQ"):
                raise _failure(400, "This simulator supports AND (^) queries only")
            else:
                filters.append(term)
        rows = [r for r in self.incidents.values() if all(self._matches(r, t) for t in filters)]
        if order and order[0] in ("number", "sys_created_on", "sys_updated_on", "state"):
            rows.sort(key=lambda r: r[order[0]], reverse=order[1])
        try:
            limit = int(req.query.get("sysparm_limit", "10000"))
            offset = int(req.query.get("sysparm_offset", "0"))
        except ValueError:
            raise _failure(400, "sysparm_limit and sysparm_offset must be numbers") from None
        page = rows[offset : offset + limit]
        headers = {"X-Total-Count": str(len(rows))}
        if not page and version != "v2":
            raise SimError(
                404,
                {
                    "error": {
                        "message": "No Record found",
                        "detail": "Records matching query not found. Check query "
                        "parameter or offset parameter",
                    },
                    "status": "failure",
                },
                headers,
            )
        return SimResponse(200, {"result": [self._render(r, req) for r in page]}, headers)

    # -- Import Set API ----------------------------------------------------------------------
    def _import(self, req: SimRequest, table: str) -> SimResponse:
        if table != self.import_table:
            raise _failure(400, f"Invalid table {table}")
        body = self._body(req)
        row = {
            (k[2:] if k.startswith("u_") else k): ("" if v is None else str(v))
            for k, v in body.items()
        }
        number = f"ISET{10001 + len(self.import_sets):07d}"
        result: dict[str, Any] = {"transform_map": "incman incident", "table": "incident"}
        key = row.get("correlation_id", "")
        existing = next(
            (r for r in self.incidents.values() if key and r["correlation_id"] == key), None
        )
        try:
            if existing is not None:
                self._write(existing, row, display=True, by=self.username, admin=True)
                record, status = existing, "updated"
            elif not row.get("short_description"):
                raise _failure(
                    400, "Transform error", "short_description is mandatory for a new incident"
                )
            else:
                record, status = self._insert(row, display=True), "inserted"
            result.update(
                {
                    "display_name": "number",
                    "display_value": record["number"],
                    "record_link": f"{self.base_url}/api/now/table/incident/{record['sys_id']}",
                    "status": status,
                    "sys_id": record["sys_id"],
                }
            )
        except SimError as exc:
            detail = exc.response.body["error"]["detail"] or exc.response.body["error"]["message"]
            result.update(
                {
                    "status": "error",
                    "error_message": detail,
                    "status_message": detail,
                    "sys_id": _sys_id(),
                }
            )
        self.import_sets.append({"import_set": number, "row": row, "result": result})
        return SimResponse(201, {"import_set": number, "staging_table": table, "result": [result]})

    # -- control -----------------------------------------------------------------------------
    def _find(self, record_id: str) -> dict[str, str]:
        record = self.incidents.get(record_id) or next(
            (r for r in self.incidents.values() if r["number"] == record_id), None
        )
        if record is None:
            raise SimError(404, {"error": f"no incident {record_id}"})
        return record

    def page(self, req: SimRequest) -> SimResponse | None:
        """`/incident.do?sys_id=...`: the incident form a person opens from a link."""
        if req.path != "/incident.do":
            return None
        record = self.incidents.get(req.query.get("sys_id", ""))
        if record is None:
            return self.html_page(404, "No record found", [], [])
        shown = [
            (name, self._display(name, record.get(name, "")))
            for name in ("number", "short_description", "state", "assigned_to", "correlation_id")
        ]
        notes = [f"{j['element']}: {j['value']}" for j in self.journal.get(record["sys_id"], [])]
        return self.html_page(200, f"Incident {record['number']}", shown, notes)

    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Changes as a person in the UI: display values allowed, ACLs not applied."""
        record = self._find(record_id)
        by = str(changes.pop("by", "admin"))
        self._write(record, changes, display=True, by=by, admin=True)
        return self._dump(record)

    def _dump(self, record: dict[str, str]) -> dict[str, Any]:
        names = {f"{f}_name": self._display(f, record[f]) for f in REFERENCES if f in record}
        return {**record, **names, "journal": list(self.journal.get(record["sys_id"], []))}

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=r["sys_id"],
                number=r["number"],
                keys=[r["correlation_id"]],
                state=r["state"],
                assignee=str(self.users.get(r["assigned_to"], {}).get("user_name", "")),
                notes=[j["value"] for j in self.journal.get(r["sys_id"], [])],
            )
            for r in self.incidents.values()
        ]

    def state(self) -> dict[str, Any]:
        return {
            "incidents": [self._dump(r) for r in self.incidents.values()],
            "import_sets": list(self.import_sets),
            "users": [{"sys_id": k, **v} for k, v in self.users.items()],
            "groups": [{"sys_id": k, **v} for k, v in self.groups.items()],
        }
