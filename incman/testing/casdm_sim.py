"""A CA Service Desk Manager simulator: the REST API under `/caisd-rest`.

It serves incidents (`in`), activity logs (`alg`) and contacts (`cnt`), as the reference
describes them (remote-apis.md, "CA Service Desk Manager REST").

What it keeps like the real server: the login (`POST /rest_access` with Basic auth and an XML
body `<rest_access/>`, 201 with `access_key` and `expiration_date`), the key in `X-AccessKey`
on every other call, an expired or unknown key answered with 400 "Invalid REST Access Key"
(not 401), logout with `DELETE /rest_access/{id}`; objects as `{"in": {"@id", "@REL_ATTR",
"@COMMON_NAME", "link", ...}}`, attributes picked by `X-Obj-Attrs`, references written as
`{"@REL_ATTR": code}` or `{"@COMMON_NAME": name}`; status codes OP/WIP/RE/CL; searches with a
where clause (`WC`, `start`, `size`) answered as `collection_in` whose `in` is an object, not a
list, when exactly one record matches; 409 "Invalid number of rows (0) affected" for an update
of nothing. The `401` fault expires every key: the call then gets the 400 above."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import defusedxml.ElementTree as SafeET

from incman.testing.simbase import (
    SimApp,
    SimError,
    SimRequest,
    SimResponse,
    Ticket,
    basic_credentials,
)

BASE = "/caisd-rest"
EXPIRED = "Invalid REST Access Key"
# OP/WIP/RE/CL are confirmed; unverified: ACK and CNCL, and the names shown
STATUSES = {
    "OP": "Open",
    "WIP": "Work In Progress",
    "ACK": "Acknowledged",
    "RE": "Resolved",
    "CL": "Closed",
    "CNCL": "Cancelled",
}
# unverified: the code ranges of priority, impact, urgency and severity (0-5 / 1-5 here)
CODES: dict[str, dict[str, str]] = {
    "status": STATUSES,
    "priority": {"0": "None", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5"},
    "impact": {"0": "None", **{str(i): str(i) for i in range(1, 6)}},
    "urgency": {"0": "None", **{str(i): str(i) for i in range(1, 6)}},
    "severity": {str(i): str(i) for i in range(1, 6)},
}
CODE_TABLE = {
    "status": "crs",
    "priority": "pri",
    "impact": "imp",
    "urgency": "urg",
    "severity": "sev",
}
CONTACT_FIELDS = ("customer", "assignee", "log_agent")
PLAIN_FIELDS = ("summary", "description", "external_system_ticket", "category", "type")
# LOG is confirmed (activity logs made through the web services); unverified: the others
ACTIVITY_TYPES = {"LOG": "Log Comment", "RE": "Resolve", "ST": "Update Status", "TR": "Transfer"}
INACTIVE = ("CL", "CNCL")
IN_ATTRS = frozenset(
    {"id", "ref_num", "status", "active", "open_date", "last_mod_dt", "group", "assignee"}
    | {*CODES, *CONTACT_FIELDS, *PLAIN_FIELDS}
)
CNT_ATTRS = frozenset({"id", "userid", "combo_name"})
DEFAULT_CONTACTS = {
    "servicedesk": "ServiceDesk",
    "incman": "Monitoring, Incman",
    "oncall1": "Oncall, One",
    "tester": "Tester, Test",
}
TOKEN = re.compile(
    r"\s*(?:(?P<paren>[(),])|(?P<text>'(?:[^']|'')*')|(?P<number>-?\d+)"
    r"|(?P<op><>|!=|=)|(?P<word>[A-Za-z_][\w.]*))"
)


def _now() -> int:
    return int(time.time())


def _uuid() -> str:
    return f"U'{secrets.token_hex(16).upper()}'"


def _json_value(value: Any) -> Any:
    """Numeric text as a number, the way SDM's JSON mapping writes it."""
    # unverified: which attributes the real JSON mapping writes as numbers (the open-source
    # clients compare access_key with a number); here every plain numeric text is one
    text = str(value)
    if text.isdigit() and len(text) <= 15 and (text == "0" or not text.startswith("0")):
        return int(text)
    return value


def _text(status: int, message: str) -> SimError:
    """An error answer."""
    # unverified: the body of SDM's error answers (plain text here)
    err = SimError(status, None, {"Content-Type": "text/plain"})
    err.response.raw = message.encode()
    return err


class WhereClause:
    """A parsed WC: comparisons (=, !=, <>, LIKE, IN (...)) joined by AND and OR, with
    parentheses; `attrs` are the attributes it may name."""

    def __init__(self, source: str, attrs: frozenset[str]) -> None:
        self.tokens = self._tokens(source)
        self.pos = 0
        self.attrs = attrs
        self.test = self._or() if self.tokens else (lambda _r: True)
        if self.pos != len(self.tokens):
            raise _text(400, f"AHD04402: bad where clause near {self.tokens[self.pos][1]!r}")

    @staticmethod
    def _tokens(source: str) -> list[tuple[str, str]]:
        out, at = [], 0
        while at < len(source.rstrip()):
            found = TOKEN.match(source, at)
            if not found or found.end() == at:
                raise _text(400, f"AHD04402: bad where clause at {source[at : at + 20]!r}")
            kind = found.lastgroup or ""
            out.append((kind, found.group(kind)))
            at = found.end()
        return out

    def _peek(self, word: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos][1].upper() == word

    def _next(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise _text(400, "AHD04402: the where clause ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _or(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._and()]
        while self._peek("OR"):
            self.pos += 1
            parts.append(self._and())
        return lambda r: any(p(r) for p in parts)

    def _and(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._factor()]
        while self._peek("AND"):
            self.pos += 1
            parts.append(self._factor())
        return lambda r: all(p(r) for p in parts)

    def _factor(self) -> Callable[[dict[str, Any]], bool]:
        if self._peek("("):
            self.pos += 1
            inner = self._or()
            if self._next()[1] != ")":
                raise _text(400, "AHD04402: unbalanced parentheses in the where clause")
            return inner
        kind, attr = self._next()
        if kind != "word" or attr not in self.attrs:
            raise _text(400, f"AHD04402: bad where clause: unknown attribute {attr!r}")
        op = self._next()[1].upper()
        if op == "IN":
            values = self._list()
            return lambda r: str(r.get(attr, "")) in values
        value = self._value(self._next())
        if op == "=":
            return lambda r: str(r.get(attr, "")) == value
        if op in ("!=", "<>"):
            return lambda r: str(r.get(attr, "")) != value
        if op == "LIKE":
            pattern = re.compile(
                "^" + ".*".join(re.escape(p) for p in value.split("%")) + "$", re.I | re.S
            )
            return lambda r: bool(pattern.match(str(r.get(attr, ""))))
        raise _text(400, f"AHD04402: bad where clause: operator {op!r}")

    def _list(self) -> set[str]:
        if self._next()[1] != "(":
            raise _text(400, "AHD04402: IN needs a list in parentheses")
        values = {self._value(self._next())}
        while self._next()[1] == ",":
            values.add(self._value(self._next()))
        return values

    @staticmethod
    def _value(token: tuple[str, str]) -> str:
        kind, raw = token
        if kind == "text":
            return raw[1:-1].replace("''", "'")
        if kind == "number":
            return raw
        raise _text(400, f"AHD04402: bad where clause: {raw!r} is not a value")


class CasdmSim(SimApp):
    """Options: the login `username`/`password` (a contact of that userid exists), the
    `key_lifetime` of access keys in seconds, and the first incident number."""

    name = "casdm"

    def __init__(
        self,
        username: str = "servicedesk",
        password: str = "sdm-secret",
        key_lifetime: float = 3600.0,
        first_number: int = 1001,
    ) -> None:
        super().__init__()
        self.username, self.password = str(username), str(password)
        self.key_lifetime = float(key_lifetime)
        self.first_number = int(first_number)
        self.reset()

    def reset(self) -> None:
        self.contacts: dict[str, dict[str, str]] = {}
        for userid, combo in {**DEFAULT_CONTACTS, self.username: self.username}.items():
            self.contacts[_uuid()] = {"userid": userid, "combo_name": combo}
        # unverified: that a group's COMMON_NAME is its last_name (contacts: combo_name)
        self.groups = {_uuid(): {"last_name": n} for n in ("Service Desk", "Database Team")}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.keys: dict[str, dict[str, Any]] = {}  # access_key → {id, user, expires}
        self.logins, self.logouts = 0, 0
        self.next_id, self.next_number = 400001, self.first_number
        self.next_access, self.next_alg = 500001, 600001

    # -- auth --------------------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        return True  # the key is checked in `handle`: its failures are not all 401s

    def expire_logins(self) -> None:
        for key in self.keys.values():
            key["expires"] = 0

    def login_expired(self) -> SimResponse:
        return self.error(400, EXPIRED)

    def error(self, status: int, message: str) -> SimResponse:
        return _text(status, message).response

    def _login(self, req: SimRequest) -> SimResponse:
        if basic_credentials(req.headers) != (self.username, self.password):
            raise _text(401, "Authorization failed")  # unverified: the status of a bad login
        # unverified: that a login body other than XML is refused (clients send XML)
        if "xml" not in req.headers.get("content-type", ""):
            raise _text(415, "Unsupported Media Type: the login body is XML")
        try:
            root = SafeET.fromstring(req.raw or b"")
        except SafeET.ParseError as exc:
            raise _text(400, f"the login body is not XML: {exc}") from None
        if root.tag != "rest_access":
            raise _text(400, f"the login body must be <rest_access/>, not <{root.tag}>")
        key, access_id = str(secrets.randbelow(9 * 10**8) + 10**8), str(self.next_access)
        self.next_access += 1
        expires = _now() + int(self.key_lifetime)
        self.keys[key] = {"id": access_id, "user": self.username, "expires": expires}
        self.logins += 1
        body = {
            "@id": access_id,
            "@REL_ATTR": access_id,
            "@COMMON_NAME": "",
            "link": {"@href": f"{self.base_url}{BASE}/rest_access/{access_id}", "@rel": "self"},
            "access_key": key,
            "expiration_date": str(expires),
        }
        return SimResponse(201, {"rest_access": {k: _json_value(v) for k, v in body.items()}})

    def _caller(self, req: SimRequest) -> str:
        key = req.headers.get("x-accesskey", "")
        if not key:  # unverified: the answer to a call without a key
            raise _text(401, "Authorization required: no X-AccessKey")
        found = self.keys.get(key)
        if found is None or found["expires"] <= _now():
            raise _text(400, EXPIRED)
        return str(found["user"])

    # -- routing -------------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        if not req.path.startswith(BASE + "/"):
            raise _text(404, "Not Found")
        path = req.path[len(BASE) + 1 :].strip("/")
        if path == "rest_access" and req.method == "POST":
            return self._login(req)
        user = self._caller(req)
        # unverified: the real server answers XML when JSON is not asked for
        if "application/json" not in req.headers.get("accept", ""):
            raise _text(406, "Not Acceptable: this simulator speaks JSON only")
        if req.method in ("POST", "PUT") and "application/json" not in req.headers.get(
            "content-type", ""
        ):
            raise _text(415, "Unsupported Media Type")
        obj, _, rest = path.partition("/")
        route = (req.method, obj, bool(rest))
        if route == ("DELETE", "rest_access", True):
            return self._logout(req, rest)
        if route == ("GET", "in", False):
            return self._search(req, "in")
        if route == ("GET", "cnt", False):
            return self._search(req, "cnt")
        if route == ("GET", "in", True):
            return SimResponse(200, {"in": self._render_in(self._incident(rest), req)})
        if route == ("POST", "in", False):
            return self._create(req, user)
        if route == ("PUT", "in", True):
            return self._update(req, rest)
        if route == ("POST", "alg", False):
            return self._activity(req, user)
        raise _text(405 if obj in ("in", "alg", "cnt") else 404, f"{req.method} {req.path}")

    def _logout(self, req: SimRequest, access_id: str) -> SimResponse:
        for key, found in list(self.keys.items()):
            if found["id"] == access_id:
                del self.keys[key]
                self.logouts += 1
                return SimResponse(204)  # unverified: the status of a logout
        raise _text(404, f"no rest_access {access_id}")

    # -- objects ---------------------------------------------------------------------------------
    def _contact_by(self, field: str, value: str) -> str:
        for uuid, row in self.contacts.items():
            if value in (uuid, row.get(field)):
                return uuid
        raise _text(400, f"AHD05800: no contact with {field} {value!r}")

    def _reference(self, field: str, value: Any) -> str:
        if not isinstance(value, dict):
            raise _text(400, f'{field}: a reference is an object such as {{"@REL_ATTR": ...}}')
        given = value.get("@REL_ATTR") or value.get("@id") or value.get("@COMMON_NAME")
        given = "" if given is None else str(given)
        if field in CODES:
            if given not in CODES[field] and value.get("@COMMON_NAME") is None:
                raise _text(400, f"AHD04402: {field}: no {CODE_TABLE[field]} code {given!r}")
            names = {n: c for c, n in CODES[field].items()}
            return names.get(given, given) if "@COMMON_NAME" in value else given
        if field == "group":
            for uuid, row in self.groups.items():
                if given in (uuid, row["last_name"]):
                    return uuid
            raise _text(400, f"AHD05800: no group {given!r}")
        return self._contact_by("combo_name", given)

    def _apply(self, record: dict[str, Any], attrs: Any) -> None:
        if not isinstance(attrs, dict):
            raise _text(400, 'the body must be {"in": {attribute: value, ...}}')
        for field, value in attrs.items():
            if field in CODES or field in CONTACT_FIELDS or field == "group":
                record[field] = self._reference(field, value)
            elif field in PLAIN_FIELDS or field.startswith("z"):
                if isinstance(value, dict | list):
                    raise _text(400, f"{field}: expected a value, not an object")
                record[field] = "" if value is None else str(value)
            else:
                raise _text(400, f"AHD04402: in has no attribute {field!r}")

    def _create(self, req: SimRequest, user: str) -> SimResponse:
        attrs = req.body.get("in") if isinstance(req.body, dict) else None
        record: dict[str, Any] = {
            "id": str(self.next_id),
            "ref_num": str(self.next_number),
            "status": "OP",
            "active": "1",
            "priority": "3",
            "impact": "3",
            "urgency": "3",
            "open_date": str(_now()),
            "log_agent": self._contact_by("userid", user),
            **{f: "" for f in (*PLAIN_FIELDS, "customer", "assignee", "group", "severity")},
        }
        record["type"] = "I"
        self._apply(record, attrs)
        if not record["customer"]:
            raise _text(400, "AHD04424: Customer is required")  # unverified: the message
        self.next_id += 1
        self.next_number += 1
        record["last_mod_dt"] = str(_now())
        self.incidents[record["id"]] = record
        self.logs[record["id"]] = []
        return SimResponse(201, {"in": self._render_in(record, req)})

    def _update(self, req: SimRequest, ident: str) -> SimResponse:
        record = self._find(ident)
        if record is None:  # unverified: that an update of a missing id is where it comes
            raise _text(409, "Invalid number of rows (0) affected")
        attrs = req.body.get("in") if isinstance(req.body, dict) else None
        new = dict(record)
        self._apply(new, attrs)
        if record["status"] in INACTIVE and new != record:
            # unverified: how the real server refuses changes to an inactive ticket
            raise _text(400, f"AHD03100: ticket {record['ref_num']} is inactive (Closed)")
        self._status_changed(record, new)
        record.update(new, last_mod_dt=str(_now()))
        return SimResponse(200, {"in": self._render_in(record, req)})

    def _status_changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """A status change: dates, `active`, and an activity log of type ST."""
        # unverified: that a status change written through REST logs an ST activity itself
        if new["status"] == old["status"]:
            return
        now = str(_now())
        new["active"] = "0" if new["status"] in INACTIVE else "1"
        if new["status"] == "RE":
            new["resolve_date"] = now
        if new["status"] in INACTIVE:
            new["close_date"] = now
        self.logs[old["id"]].append(
            {
                "type": "ST",
                "description": f"Status changed from {STATUSES[old['status']]} "
                f"to {STATUSES[new['status']]}",
                "time_stamp": now,
                "analyst": "",
            }
        )

    def _activity(self, req: SimRequest, user: str) -> SimResponse:
        attrs = req.body.get("alg") if isinstance(req.body, dict) else None
        if not isinstance(attrs, dict):
            raise _text(400, 'the body must be {"alg": {...}}')
        ticket = attrs.get("call_req_id")
        persid = str(ticket.get("@REL_ATTR", "")) if isinstance(ticket, dict) else ""
        record = self.incidents.get(persid[3:]) if persid.startswith("cr:") else None
        if record is None:
            raise _text(400, f"AHD04402: call_req_id {persid!r} is not a request or incident")
        kind = attrs.get("type")
        code = str(kind.get("@REL_ATTR", "")) if isinstance(kind, dict) else ""
        if code not in ACTIVITY_TYPES:
            raise _text(400, f"AHD04402: no activity type {code!r}")
        unknown = set(attrs) - {"call_req_id", "type", "description", "analyst", "internal"}
        if unknown:
            raise _text(400, f"AHD04402: alg has no attribute {sorted(unknown)[0]!r}")
        entry = {
            "id": str(self.next_alg),
            "type": code,
            "description": str(attrs.get("description") or ""),
            "time_stamp": str(_now()),
            "analyst": self._contact_by("userid", user),  # unverified: the default analyst
        }
        self.next_alg += 1
        self.logs[record["id"]].append(entry)
        head = {"@id": entry["id"], "@REL_ATTR": entry["id"], "@COMMON_NAME": ""}
        return SimResponse(201, {"alg": {k: _json_value(v) for k, v in head.items()}})

    # -- reads -----------------------------------------------------------------------------------
    def _find(self, ident: str) -> dict[str, Any] | None:
        if ident.startswith("COMMON_NAME-"):
            number = ident[len("COMMON_NAME-") :]
            return next((r for r in self.incidents.values() if r["ref_num"] == number), None)
        return self.incidents.get(ident)

    def _incident(self, ident: str) -> dict[str, Any]:
        record = self._find(ident)
        if record is None:  # unverified: a read of a missing id answers 404
            raise _text(404, f"in {ident} not found")
        return record

    def _wanted(self, req: SimRequest, record: dict[str, Any]) -> list[str]:
        asked = req.headers.get("x-obj-attrs", "")
        if asked.strip() == "*":
            return [k for k in record if k != "id"]
        return [a.strip() for a in asked.split(",") if a.strip() in record]

    def _code_ref(self, field: str, code: str) -> dict[str, Any]:
        # unverified: the row ids of code tables and the shape of `link`
        table = CODE_TABLE[field]
        row = list(CODES[field]).index(code) + 5200 if code in CODES[field] else 0
        return {
            "@id": row,
            "@REL_ATTR": code,
            "@COMMON_NAME": CODES[field].get(code, code),
            "link": {"@href": f"{self.base_url}{BASE}/{table}/{row}", "@rel": table},
        }

    def _object_ref(self, table: str, uuid: str, name: str) -> dict[str, Any]:
        return {
            "@id": uuid,
            "@REL_ATTR": uuid,
            "@COMMON_NAME": name,
            "link": {"@href": f"{self.base_url}{BASE}/{table}/{uuid}", "@rel": table},
        }

    def _render_in(self, record: dict[str, Any], req: SimRequest) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@id": _json_value(record["id"]),
            "@REL_ATTR": f"cr:{record['id']}",
            "@COMMON_NAME": _json_value(record["ref_num"]),
            "link": {"@href": f"{self.base_url}{BASE}/in/{record['id']}", "@rel": "self"},
        }
        for name in self._wanted(req, record):
            value = record[name]
            if name in CODES and value:
                out[name] = self._code_ref(name, value)
            elif name in CONTACT_FIELDS and value:
                out[name] = self._object_ref("cnt", value, self.contacts[value]["combo_name"])
            elif name == "group" and value:
                out[name] = self._object_ref("grp", value, self.groups[value]["last_name"])
            elif name in (*CODES, *CONTACT_FIELDS, "group"):
                continue  # unverified: how an empty reference is written (left out here)
            else:
                out[name] = _json_value(value)
        return out

    def _render_cnt(self, uuid: str, req: SimRequest) -> dict[str, Any]:
        row = self.contacts[uuid]
        out = self._object_ref("cnt", uuid, row["combo_name"])
        out["link"]["@rel"] = "self"
        for name in self._wanted(req, row):
            out[name] = _json_value(row[name])
        return out

    def _search(self, req: SimRequest, obj: str) -> SimResponse:
        source = self.incidents if obj == "in" else self.contacts
        rows = {k: {**r, "id": k} for k, r in source.items()}
        where = WhereClause(req.query.get("WC", ""), IN_ATTRS if obj == "in" else CNT_ATTRS)
        found = [k for k, r in rows.items() if where.test(r)]
        try:
            start = max(1, int(req.query.get("start", "1")))
            size = max(1, int(req.query.get("size", "25")))  # unverified: the default page
        except ValueError:
            raise _text(400, "start and size must be numbers") from None
        page = found[start - 1 : start - 1 + size]
        items = [
            self._render_in(self.incidents[k], req) if obj == "in" else self._render_cnt(k, req)
            for k in page
        ]
        collection: dict[str, Any] = {
            "@COUNT": len(items),
            "@START": start if items else 0,
            "@TOTAL_COUNT": len(found),
        }
        if items:
            collection[obj] = items[0] if len(items) == 1 else items  # the real quirk
        return SimResponse(200, {f"collection_{obj}": collection})

    # -- control -----------------------------------------------------------------------------------
    def _userid(self, uuid: str) -> str:
        return self.contacts.get(uuid, {}).get("userid", "")

    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """As a person in the web UI: `status` (a code), `assignee` (a userid), `note`."""
        record = self._find(record_id) or next(
            (r for r in self.incidents.values() if r["ref_num"] == record_id), None
        )
        if record is None:
            raise SimError(404, {"error": f"no incident {record_id}"})
        new = dict(record)
        if "status" in changes:
            if str(changes["status"]) not in STATUSES:
                raise SimError(400, {"error": f"no status {changes['status']}"})
            new["status"] = str(changes["status"])
        if "assignee" in changes:
            new["assignee"] = self._contact_by("userid", str(changes["assignee"]))
        self._status_changed(record, new)
        record.update(new, last_mod_dt=str(_now()))
        if changes.get("note"):
            self.logs[record["id"]].append(
                {"type": "LOG", "description": str(changes["note"]), "time_stamp": str(_now())}
            )
        return self._dump(record)

    def _dump(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            **record,
            "assignee_userid": self._userid(record["assignee"]),
            "customer_name": self.contacts.get(record["customer"], {}).get("combo_name", ""),
            "group_name": self.groups.get(record["group"], {}).get("last_name", ""),
            "activity": list(self.logs.get(record["id"], [])),
        }

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=r["id"],
                number=r["ref_num"],
                keys=[r["external_system_ticket"]],
                state=r["status"],
                assignee=self._userid(r["assignee"]),
                notes=[a["description"] for a in self.logs[r["id"]] if a["type"] == "LOG"],
            )
            for r in self.incidents.values()
        ]

    def state(self) -> dict[str, Any]:
        return {
            "incidents": [self._dump(r) for r in self.incidents.values()],
            "contacts": [{"id": k, **v} for k, v in self.contacts.items()],
            "logins": self.logins,
            "logouts": self.logouts,
            "active_keys": sum(1 for k in self.keys.values() if k["expires"] > _now()),
        }

    def describe(self) -> str:
        return (
            f"CA SDM simulator at {self.base_url} (REST under {BASE}); login "
            f"{self.username}/{self.password}; contacts: {', '.join(DEFAULT_CONTACTS)}"
        )
