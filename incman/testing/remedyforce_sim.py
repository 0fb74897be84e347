"""A BMC Remedyforce simulator: the Salesforce REST API on the Remedyforce incident objects.

It serves them as the reference describes it (remote-apis.md), on a real HTTP server.

What it keeps like Salesforce: `POST /services/oauth2/token` (form; grants `password` with
the security token appended to the password, and `client_credentials`) answering
`access_token`, `instance_url` and `id` (ending in the user's Id), 400 `invalid_grant` /
`invalid_client`; bearer sessions that time out (`token_ttl`; the `401` fault expires them)
with 401 `INVALID_SESSION_ID`; records under `/services/data/vNN.0/sobjects/<Object>` with
18-character Ids; the External ID upsert `PATCH .../<Object>/<Field__c>/<value>` (201
created; updated: 200 with a body from v46.0, 204 before; 300 when the value is on several
records; neither Id nor the field may be in the body); SOQL through `/query?q=` (SELECT …
FROM … WHERE a = 'x' AND b IN (…) LIMIT n, `Owner.Username`, `nextRecordsUrl` paging);
errors as `[{"message", "errorCode", "fields"}]` (INVALID_FIELD, MALFORMED_ID,
INVALID_CROSS_REFERENCE_KEY, STRING_TOO_LONG, MALFORMED_QUERY); the org's API request limit
(`request_limit`, `POST /_sim/limits`) with 403 REQUEST_LIMIT_EXCEEDED and the
`Sforce-Limit-Info` header. Remedyforce's objects: incidents refer to Status, Urgency,
Impact, Category and User records by Id; notes are IncidentHistory records."""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from incman.testing.remedyforce_soql import SoqlError, parse_soql
from incman.testing.simbase import SimApp, SimError, SimRequest, SimResponse, Ticket

DATA_PATH = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/(?P<rest>.*)$")
INCIDENT = "BMCServiceDesk__Incident__c"
HISTORY = "BMCServiceDesk__IncidentHistory__c"
B62 = string.ascii_letters + string.digits
# object → (Id prefix, the object each reference field points to); unverified: the prefixes of
# the Remedyforce objects (an org's custom objects get prefixes of their own)
OBJECTS: dict[str, tuple[str, dict[str, str]]] = {
    "User": ("005", {}),
    "BMCServiceDesk__Status__c": ("a3E", {}),
    "BMCServiceDesk__Urgency__c": ("a4U", {}),
    "BMCServiceDesk__Impact__c": ("a2I", {}),
    "BMCServiceDesk__Category__c": ("a1C", {}),
    "BMCServiceDesk__Action__c": ("a0A", {}),
    INCIDENT: (
        "a2B",
        {
            "OwnerId": "User",
            "BMCServiceDesk__FKClient__c": "User",
            "BMCServiceDesk__FKStatus__c": "BMCServiceDesk__Status__c",
            "BMCServiceDesk__FKUrgency__c": "BMCServiceDesk__Urgency__c",
            "BMCServiceDesk__FKImpact__c": "BMCServiceDesk__Impact__c",
            "BMCServiceDesk__FKCategory__c": "BMCServiceDesk__Category__c",
        },
    ),
    HISTORY: (
        "a2H",
        {
            "BMCServiceDesk__FKIncident__c": INCIDENT,
            "BMCServiceDesk__FKAction__c": "BMCServiceDesk__Action__c",
        },
    ),
}
LABELS = {  # what errors call a reference field
    "OwnerId": "Owner ID",
    "BMCServiceDesk__FKClient__c": "Client ID",
    "BMCServiceDesk__FKStatus__c": "Status",
    "BMCServiceDesk__FKUrgency__c": "Urgency",
    "BMCServiceDesk__FKImpact__c": "Impact",
    "BMCServiceDesk__FKCategory__c": "Category",
    "BMCServiceDesk__FKIncident__c": "Incident",
    "BMCServiceDesk__FKAction__c": "Action",
}
INCIDENT_TEXT = {
    "BMCServiceDesk__shortDescription__c": 255,
    "BMCServiceDesk__incidentDescription__c": 32000,
    "BMCServiceDesk__incidentResolution__c": 32000,
}
READ_ONLY = {
    INCIDENT: (
        "Id", "Name", "CreatedDate", "LastModifiedDate", "BMCServiceDesk__Status_ID__c",
        "BMCServiceDesk__state__c", "BMCServiceDesk__closeDateTime__c",
    ),
    HISTORY: ("Id", "Name", "CreatedDate"),
}  # fmt: skip
# unverified: the names of Remedyforce's out-of-the-box records (the org may rename them)
STATUSES = {"OPENED": True, "ASSIGNED": True, "IN PROGRESS": True, "PENDING": True, "CLOSED": False}
LEVELS = ("HIGH", "MEDIUM", "LOW")
CATEGORIES = ("Network", "Hardware", "Software", "Monitoring")
ACTIONS = ("Notes", "Email Sent", "Client Note")


def sf_id(prefix: str) -> str:
    """An 18-character Salesforce Id: 15 case-sensitive characters and their checksum."""
    base = prefix + "5g" + "".join(secrets.choice(B62) for _ in range(10))
    suffix = ""
    for chunk in (base[0:5], base[5:10], base[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if c.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return base + suffix


def sf_error(status: int, code: str, message: str, fields: list[str] | None = None) -> SimError:
    return SimError(status, [{"message": message, "errorCode": code, "fields": fields or []}])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())


class RemedyforceSim(SimApp):
    """Options: the connected app (`client_id`, `client_secret`), the API user (`username`,
    `password`, `security_token`), `token_ttl` (seconds a session lasts), the other `users`
    (Usernames), the incidents' `external_id_field`, `request_limit` (API calls the org may
    make; 0: no limit) and `query_batch` (records per query page)."""

    name = "remedyforce"

    def __init__(
        self,
        client_id: str = "incman-client",
        client_secret: str = "incman-client-secret",
        username: str = "incman@incman.example",
        password: str = "incman-secret",
        security_token: str = "",
        token_ttl: float | str = 7200.0,
        users: list[str] | str | None = None,
        external_id_field: str = "incman_Key__c",
        request_limit: int | str = 0,
        query_batch: int | str = 2000,
    ) -> None:
        super().__init__()
        self.client = (client_id, client_secret)
        self.username, self.secret = username, password + security_token
        self.token_ttl, self.query_batch = float(token_ttl), int(query_batch)
        names = (
            users
            if users is not None
            else [f"{u}@incman.example" for u in ("oncall1", "oncall2", "tester", "allen")]
        )
        self.user_names = [username, *(names.split(",") if isinstance(names, str) else names)]
        self.ext = external_id_field
        self.limit, self.used = int(request_limit), 0
        self.clock: Callable[[], float] = time.monotonic
        self.tokens: dict[str, float] = {}
        self.org = sf_id("00D")
        self.reset()

    def reset(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self.next_number = 1001
        for username in dict.fromkeys(self.user_names):
            self._insert("User", {"Username": username, "Name": username.split("@")[0].title()})
        self.me = next(iter(self.records["User"]))
        for name, is_open in STATUSES.items():
            self._insert(
                "BMCServiceDesk__Status__c", {"Name": name, "BMCServiceDesk__state__c": is_open}
            )
        for obj, names in (
            ("BMCServiceDesk__Urgency__c", LEVELS),
            ("BMCServiceDesk__Impact__c", LEVELS),
            ("BMCServiceDesk__Category__c", CATEGORIES),
            ("BMCServiceDesk__Action__c", ACTIONS),
        ):
            for name in names:
                self._insert(obj, {"Name": name})

    def _insert(self, obj: str, values: dict[str, Any]) -> dict[str, Any]:
        record = {"Id": sf_id(OBJECTS[obj][0]), "CreatedDate": _now(), **values}
        self.records[obj][record["Id"]] = record
        return record

    # -- auth and errors -----------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        if req.path == "/services/oauth2/token":
            return True  # the client authenticates in the form
        auth = req.headers.get("authorization", "")
        expires = self.tokens.get(auth[7:].strip()) if auth.startswith("Bearer ") else None
        return expires is not None and self.clock() < expires

    def expire_logins(self) -> None:
        self.tokens.clear()

    def error(self, status: int, message: str) -> SimResponse:
        if status == 401:  # unverified: the message text (the code is documented)
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid").response
        # unverified: Salesforce's code on a 429 (its limits answer 403 REQUEST_LIMIT_EXCEEDED)
        code = {429: "REQUEST_LIMIT_EXCEEDED", 500: "UNKNOWN_EXCEPTION"}.get(
            status, "UNKNOWN_EXCEPTION"
        )
        return sf_error(status, code, message).response

    # unverified: the exact error and error_description texts of the token endpoint
    def _token(self, req: SimRequest) -> SimResponse:
        form = {k: v[0] for k, v in parse_qs(req.raw.decode(errors="replace")).items()}
        if form.get("client_id") != self.client[0]:
            return SimResponse(
                400,
                {"error": "invalid_client_id", "error_description": "client identifier invalid"},
            )
        if form.get("client_secret") != self.client[1]:
            return SimResponse(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        grant = form.get("grant_type")
        if grant == "password":
            if (form.get("username"), form.get("password")) != (self.username, self.secret):
                return SimResponse(
                    400, {"error": "invalid_grant", "error_description": "authentication failure"}
                )
        elif grant != "client_credentials":
            return SimResponse(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        token = f"{self.org[:15]}!{secrets.token_urlsafe(48)}"
        self.tokens[token] = self.clock() + self.token_ttl
        return SimResponse(
            200,
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{self.org}/{self.me}",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": secrets.token_urlsafe(32),
            },
        )

    # -- routing -------------------------------------------------------------------------------
    def control(self, req: SimRequest) -> SimResponse:
        if req.path.strip("/") == "_sim/limits" and req.method == "POST":
            body = req.body if isinstance(req.body, dict) else {}
            with self.lock:
                self.limit = int(body.get("limit", self.limit))
                self.used = int(body.get("used", self.used))
                return SimResponse(200, {"limit": self.limit, "used": self.used})
        return super().control(req)

    def handle(self, req: SimRequest) -> SimResponse:
        if req.path == "/services/oauth2/token" and req.method == "POST":
            return self._token(req)
        found = DATA_PATH.match(req.path)
        if not found:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        # unverified: the message text (403 REQUEST_LIMIT_EXCEEDED is documented)
        if self.limit and self.used >= self.limit:
            raise sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.used += 1
        version, parts = (
            float(found["version"]),
            [unquote(p) for p in found["rest"].strip("/").split("/")],
        )
        resp = self._route(req, version, parts)
        if self.limit:
            resp.headers[
                "Sforce-Limit-Info"
            ]  # unverified: sent on every answer = f"api-usage={self.used}/{self.limit}"
        return resp

    def _route(self, req: SimRequest, version: float, parts: list[str]) -> SimResponse:
        if parts == ["query"] and req.method == "GET":
            return self._query(req.query.get("q", ""), f"v{version:.1f}")
        if len(parts) == 2 and parts[0] == "query" and req.method == "GET":
            return self._page(parts[1], f"v{version:.1f}")
        if not parts or parts[0] != "sobjects" or len(parts) < 2 or parts[1] not in OBJECTS:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        obj, rest = parts[1], parts[2:]
        if not rest and req.method == "POST":
            return self._create(obj, req)
        if len(rest) == 1 and req.method in ("GET", "PATCH"):
            record = self._record(obj, rest[0])
            if req.method == "GET":
                return SimResponse(200, self._shown(obj, record, req.query.get("fields")))
            self._write(obj, record, self._body(req))
            return SimResponse(204)
        if len(rest) == 2 and req.method in ("GET", "PATCH"):
            return self._by_external_id(obj, rest[0], rest[1], req, version)
        raise sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed")

    # -- records -------------------------------------------------------------------------------
    def _record(self, obj: str, record_id: str) -> dict[str, Any]:
        record = self.records[obj].get(record_id) or next(
            (
                r
                for i, r in self.records[obj].items()
                if len(record_id) == 15 and i[:15] == record_id
            ),
            None,
        )
        if record is None:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        return record

    def _shown(self, obj: str, record: dict[str, Any], fields: str | None = None) -> dict[str, Any]:
        wanted = [f.strip() for f in fields.split(",")] if fields else list(record)
        return {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v59.0/sobjects/{obj}/{record['Id']}",
            },
            **{f: record.get(f) for f in wanted},
        }

    @staticmethod
    def _body(req: SimRequest) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise sf_error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        return dict(req.body)

    def _fields(self, obj: str) -> set[str]:
        if obj == INCIDENT:
            return {*READ_ONLY[INCIDENT], *OBJECTS[INCIDENT][1], *INCIDENT_TEXT, self.ext}
        if obj == HISTORY:
            return {*READ_ONLY[HISTORY], *OBJECTS[HISTORY][1], "BMCServiceDesk__note__c"}
        return set().union(*(r.keys() for r in self.records[obj].values())) | {"Id"}

    # unverified: the wording of INVALID_FIELD, MALFORMED_ID, FIELD_INTEGRITY_EXCEPTION,
    # INVALID_CROSS_REFERENCE_KEY and STRING_TOO_LONG messages; the field lengths
    def _check(self, obj: str, values: dict[str, Any]) -> None:
        if obj not in READ_ONLY:  # unverified: the integration user may not change these
            raise sf_error(
                403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id"
            )
        for name, value in values.items():
            if name not in self._fields(obj):
                raise sf_error(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {obj}",
                    [name],
                )
            if name in READ_ONLY[obj]:
                raise sf_error(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your "
                    "profile or permission set.",
                    [name],
                )
            target = OBJECTS[obj][1].get(name)
            if target and value not in (None, ""):
                self._check_reference(name, str(value), target)
            limit = INCIDENT_TEXT.get(name)
            if limit and value is not None and len(str(value)) > limit:
                raise sf_error(
                    400,
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {str(value)[:40]}... (max length={limit})",
                    [name],
                )

    def _check_reference(self, name: str, value: str, target: str) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?", value):
            raise sf_error(
                400, "MALFORMED_ID", f"{LABELS[name]}: id value of incorrect type: {value}", [name]
            )
        if not value.startswith(OBJECTS[target][0]):
            raise sf_error(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{LABELS[name]}: id value of incorrect type: {value}",
                [name],
            )
        if not any(i[: len(value)] == value for i in self.records[target]):
            raise sf_error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])

    def _create(self, obj: str, req: SimRequest) -> SimResponse:
        record = self._new(obj, self._body(req))
        return SimResponse(201, {"id": record["Id"], "success": True, "errors": []})

    def _new(self, obj: str, values: dict[str, Any]) -> dict[str, Any]:
        self._check(obj, values)
        blank: dict[str, Any] = dict.fromkeys(self._fields(obj) - {"Id", "CreatedDate"})
        if obj == INCIDENT:
            blank.update(
                {"Name": f"{self.next_number:08d}", "OwnerId": self.me}
            )  # unverified: Name
            self.next_number += 1
            values.setdefault("BMCServiceDesk__FKStatus__c", self._status_id("OPENED"))
        else:
            blank["Name"] = f"IH-{len(self.records[obj]) + 1:08d}"
        record = self._insert(obj, blank)
        self._apply(obj, record, values)
        return record

    def _status_id(self, name: str) -> str:
        return next(
            i for i, r in self.records["BMCServiceDesk__Status__c"].items() if r["Name"] == name
        )

    def _write(self, obj: str, record: dict[str, Any], values: dict[str, Any]) -> None:
        self._check(obj, values)
        self._apply(obj, record, values)

    def _apply(self, obj: str, record: dict[str, Any], values: dict[str, Any]) -> None:
        new = {**record, **values}
        for name, target in OBJECTS[obj][1].items():
            if new.get(name) and len(new[name]) == 15:  # a 15-character Id is stored as 18
                new[name] = next(i for i in self.records[target] if i[:15] == new[name])
        if obj == INCIDENT:
            status = self.records["BMCServiceDesk__Status__c"][new["BMCServiceDesk__FKStatus__c"]]
            is_open = bool(status["BMCServiceDesk__state__c"])
            if not is_open and not new.get("BMCServiceDesk__incidentResolution__c"):
                # unverified: Remedyforce's wording of its rule that closing needs a resolution
                raise sf_error(
                    400,
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "Resolution is required to close an incident",
                    ["BMCServiceDesk__incidentResolution__c"],
                )
            # unverified: that state__c and closeDateTime__c follow the status this way
            if record.get("BMCServiceDesk__state__c", True) and not is_open:
                new["BMCServiceDesk__closeDateTime__c"] = _now()
            elif is_open:
                new["BMCServiceDesk__closeDateTime__c"] = None
            new["BMCServiceDesk__Status_ID__c"] = status["Name"]
            new["BMCServiceDesk__state__c"] = is_open
        new["LastModifiedDate"] = _now()
        record.update(new)

    def _by_external_id(
        self, obj: str, field: str, value: str, req: SimRequest, version: float
    ) -> SimResponse:
        if obj != INCIDENT or field != self.ext:
            raise sf_error(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        matches = [r for r in self.records[obj].values() if r.get(field) == value]
        if len(matches) > 1:
            urls = [f"/services/data/v{version:.1f}/sobjects/{obj}/{r['Id']}" for r in matches]
            return SimResponse(300, urls)
        if req.method == "GET":
            if not matches:
                raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
            return SimResponse(200, self._shown(obj, matches[0], req.query.get("fields")))
        body = self._body(req)
        if "Id" in body or field in body:
            # unverified: the code and wording of this refusal
            raise sf_error(
                400,
                "INVALID_FIELD",
                f"The field {field if field in body else 'Id'} must not be in the body of an "
                "upsert by external ID",
            )
        if not matches:
            record = self._new(obj, {**body, field: value})
            return SimResponse(
                201, {"id": record["Id"], "success": True, "errors": [], "created": True}
            )
        self._write(obj, matches[0], body)
        if version < 46.0:  # unverified: the version from which an update answers 200
            return SimResponse(204)
        return SimResponse(
            200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False}
        )

    # -- SOQL ----------------------------------------------------------------------------------
    def _query(self, soql: str, version: str) -> SimResponse:
        try:
            query = parse_soql(soql, lambda obj: self._fields(obj) if obj in OBJECTS else None)
        except SoqlError as exc:
            raise sf_error(400, exc.code, str(exc)) from None
        rows = [r for r in self.records[query.sobject].values() if query.test(r, self._related)]
        order = query.order
        if order:
            rows.sort(key=lambda r: str(r.get(order) or ""))
        if query.limit is not None:
            rows = rows[: query.limit]
        shown = [self._select(query.sobject, r, query.fields, version) for r in rows]
        return self._answer(shown, version)

    def _related(self, record: dict[str, Any], path: str) -> Any:
        if path == "Owner.Username":
            return self.records["User"].get(record.get("OwnerId") or "", {}).get("Username")
        return record.get(path)

    def _select(
        self, obj: str, record: dict[str, Any], fields: list[str], version: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/{version}/sobjects/{obj}/{record['Id']}",
            }
        }
        for name in fields:
            if name == "Owner.Username":
                owner = self.records["User"].get(record.get("OwnerId") or "")
                out["Owner"] = (
                    {
                        "attributes": {
                            "type": "User",
                            "url": f"/services/data/{version}/sobjects/User/{owner['Id']}",
                        },
                        "Username": owner["Username"],
                    }
                    if owner
                    else None
                )
            else:
                out[name] = record.get(name)
        return out

    # unverified: the form of the query locator in nextRecordsUrl
    def _answer(self, rows: list[dict[str, Any]], version: str) -> SimResponse:
        page, rest = rows[: self.query_batch], rows[self.query_batch :]
        body: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": page}
        if rest:
            cursor = f"01g{secrets.token_hex(6)}-{self.query_batch}"
            self.cursors[cursor] = rest
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{cursor}"
        return SimResponse(200, body)

    def _page(self, cursor: str, version: str) -> SimResponse:
        rows = self.cursors.pop(cursor, None)
        if rows is None:
            raise sf_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._answer(rows, version)

    # -- control -------------------------------------------------------------------------------
    def _find(self, record_id: str) -> dict[str, Any]:
        found = self.records[INCIDENT].get(record_id) or next(
            (r for r in self.records[INCIDENT].values() if r["Name"] == record_id), None
        )
        if found is None:
            raise SimError(404, {"error": f"no incident {record_id}"})
        return found

    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """As a person in Remedyforce: `status` (a name), `resolution`, `owner` (a
        Username), `note` (a Notes history entry), or fields by their API names."""
        record = self._find(record_id)
        note = changes.pop("note", None)
        values = dict(changes)
        if "status" in values:
            values["BMCServiceDesk__FKStatus__c"] = self._status_id(str(values.pop("status")))
        if "resolution" in values:
            values["BMCServiceDesk__incidentResolution__c"] = values.pop("resolution")
        if "owner" in values:
            owner = str(values.pop("owner"))
            values["OwnerId"] = next(
                i for i, u in self.records["User"].items() if u["Username"] == owner
            )
        if values:
            self._write(INCIDENT, record, values)
        if note:
            action = next(
                i
                for i, a in self.records["BMCServiceDesk__Action__c"].items()
                if a["Name"] == "Notes"
            )
            self._new(
                HISTORY,
                {
                    "BMCServiceDesk__FKIncident__c": record["Id"],
                    "BMCServiceDesk__FKAction__c": action,
                    "BMCServiceDesk__note__c": str(note),
                },
            )
        return self._dump(record)

    def _notes(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            h
            for h in self.records[HISTORY].values()
            if h["BMCServiceDesk__FKIncident__c"] == record["Id"]
        ]

    def _dump(self, record: dict[str, Any]) -> dict[str, Any]:
        owner = self.records["User"].get(record["OwnerId"], {})
        return {**record, "Owner.Username": owner.get("Username"), "history": self._notes(record)}

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=r["Id"],
                number=r["Name"],
                keys=[r[self.ext]] if r.get(self.ext) else [],
                state=r["BMCServiceDesk__Status_ID__c"],
                assignee=""
                if r["OwnerId"] == self.me
                else self.records["User"][r["OwnerId"]]["Username"],
                notes=[h["BMCServiceDesk__note__c"] for h in self._notes(r)],
            )
            for r in self.records[INCIDENT].values()
        ]

    def state(self) -> dict[str, Any]:
        return {
            "incidents": [self._dump(r) for r in self.records[INCIDENT].values()],
            "users": list(self.records["User"].values()),
            "statuses": list(self.records["BMCServiceDesk__Status__c"].values()),
            "categories": list(self.records["BMCServiceDesk__Category__c"].values()),
            "limits": {"limit": self.limit, "used": self.used},
            "sessions": len(self.tokens),
        }

    def describe(self) -> str:
        return (
            f"remedyforce simulator at {self.base_url} (connected app {self.client[0]!r}, "
            f"user {self.username!r}, External ID field {self.ext})"
        )
