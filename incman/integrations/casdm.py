"""CA Service Desk Manager over its REST API (`/caisd-rest`).

Incidents are `in` objects, found again by `external_system_ticket`; notes are activity logs
(`alg`). A login (`POST /rest_access`, Basic auth, XML body `<rest_access/>`) hands out an
access key sent as `X-AccessKey` and ended with a DELETE on shutdown. An expired key is
answered with 400 "Invalid REST Access Key", not 401: that is what `auth_expired` looks for.

A search answers a single object instead of a list when exactly one record matches, and
numeric text may come back as a JSON number: both handled here (`collection_items`,
`as_text`). (fields and references: docs/remote-systems.md)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import CannotReopen, IntegrationError, PermanentError
from incman.integrations.http import HttpClient

CODE_FIELDS = frozenset({"priority", "impact", "urgency", "severity", "status"})
NAME_FIELDS = frozenset({"customer", "group", "category", "affected_resource"})
READ_ATTRS = "ref_num,status,assignee,external_system_ticket"
STATUS_CHUNK = 50
SUMMARY_MAX = 240
EXPIRED_KEY = "Invalid REST Access Key"
# event severity → (impact, urgency, priority): SDM's 1 is the widest impact and the highest
# priority; its urgency runs the other way (5 is "Immediate")
SEVERITY_LEVELS = {5: ("1", "5", "1"), 4: ("2", "4", "2"), 3: ("3", "3", "3"), 2: ("4", "2", "4")}


def as_text(value: Any) -> str:
    """An attribute as text: SDM's JSON gives numeric text as numbers, absent ones as null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def rel_attr(value: Any) -> str:
    """The code of a reference ({"@REL_ATTR": "OP", ...}), or "" when it is empty."""
    return as_text(value.get("@REL_ATTR")) if isinstance(value, dict) else as_text(value)


def common_name(value: Any) -> str:
    return as_text(value.get("@COMMON_NAME")) if isinstance(value, dict) else as_text(value)


def collection_items(answer: Any, obj: str) -> list[dict[str, Any]]:
    """The records of a search answer: `collection_<obj>` holds no `<obj>` when nothing
    matched, a single object when exactly one did, and a list otherwise."""
    collection = answer.get(f"collection_{obj}") if isinstance(answer, dict) else None
    if not isinstance(collection, dict):
        raise PermanentError(f"casdm: no collection_{obj} in the search answer")
    items = collection.get(obj)
    if items is None:
        return []
    if isinstance(items, dict):
        return [items]
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def quote(value: str) -> str:
    """A text literal of a where clause (WC)."""
    return "'" + value.replace("'", "''") + "'"


def object_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The attributes of an `in` object as SDM takes them (references as objects)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, dict):
            body[name] = value  # a reference written out already
        elif name in CODE_FIELDS:
            body[name] = {"@REL_ATTR": as_text(value)}
        elif name in NAME_FIELDS:
            body[name] = {"@COMMON_NAME": as_text(value)}
        else:
            body[name] = as_text(value)
    return body


class CasdmConfig(IntegrationConfig):
    url: str = url_setting(
        required=True, help="the REST service's address, e.g. http://sdm:8050 (no /caisd-rest)"
    )
    username: str = setting("", required=True, help="an SDM user (Basic auth of the login)")
    password: str = setting("", required=True, secret=True, help="its password")
    web_url: str = setting("", help="the web UI's address for incident links (default: url)")
    customer: str = setting(
        "", required=True, help="the contact new incidents are logged for (its combo name)"
    )
    group: str = setting("", help="the group new incidents go to (its name)")
    resolve_status: str = setting("RE", help="the status code a close sets")
    reopen_status: str = setting("OP", help="the status code a re-open sets")
    final_statuses: tuple[str, ...] = setting(
        ("CL",), required=True, help="status codes closed for good (inactive: no re-open)"
    )
    note_type: str = setting("LOG", help="the activity type of notes (`alg` type code)")
    user_map: dict[str, str] = setting({}, help="incman user → SDM contact userid")

    def check(self) -> Iterator[tuple[str, str]]:
        if self.reopen_status in self.final_statuses:
            yield "reopen_status", "may not be one of final_statuses"


class CasdmIntegration(Integration[CasdmConfig]):
    name = "casdm"
    capabilities = ALL_CAPABILITIES
    # SDM's status codes (`crs`); "final_statuses" are CLOSED whatever this map says
    status_map: ClassVar[dict[str, str]] = {
        "OP": "OPEN",
        "WIP": "OPEN",
        "ACK": "OPEN",
        "PNDCHG": "OPEN",
        "RE": "RESOLVED",
        "CL": "CLOSED",
        "CNCL": "CLOSED",
    }

    access_id = ""  # the rest_access object of the login, for the logout

    def call_budget(self) -> float:
        return 2 * super().call_budget()  # a create may log in and search first

    # -- the login -------------------------------------------------------------------------
    def auth(self, session: HttpClient) -> None:
        session.use_header("Accept", "application/json")
        answer = session.json(
            "POST",
            self._url("rest_access"),
            data=b"<rest_access/>",
            auth=(self.cfg.username, self.cfg.password),
            headers={"Content-Type": "application/xml; charset=UTF-8", "X-AccessKey": None},
        )
        access = answer.get("rest_access") if isinstance(answer, dict) else None
        key = as_text(access.get("access_key")) if isinstance(access, dict) else ""
        if not key or not isinstance(access, dict):
            raise PermanentError("casdm: the login answered no access_key")
        self.access_id = as_text(access.get("@id"))
        session.use_header("X-AccessKey", key)

    def auth_expired(self, error: IntegrationError) -> bool:
        # SDM answers an expired (or forgotten) key with a 400, a call without one with a 401
        return (error.status == 400 and EXPIRED_KEY in str(error)) or error.status == 401

    def logout(self, session: HttpClient) -> None:
        if self.access_id:
            session.request("DELETE", self._url(f"rest_access/{self.access_id}"))
            self.access_id = ""

    # -- mapping ---------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        impact, urgency, priority = SEVERITY_LEVELS.get(
            int(event.get("severity", 3)), ("5", "1", "5")
        )
        fields = {
            "summary": as_text(event.get("summary"))[:SUMMARY_MAX],
            "description": MappingUtils(urls).getDescription(event),
            "impact": impact,
            "urgency": urgency,
            "priority": priority,
            "customer": self.cfg.customer,
        }
        if self.cfg.group:
            fields["group"] = self.cfg.group
        return fields

    def _state(self, status: str, assignee: str) -> str:
        if status in self.cfg.final_statuses:
            return "CLOSED"
        mapped = self.map_state(status)
        return "ASSIGNED" if mapped == "OPEN" and assignee else mapped

    def _ref(self, item: dict[str, Any]) -> RemoteIncident:
        remote_id = as_text(item.get("@id"))
        status = rel_attr(item.get("status"))
        assignee = common_name(item.get("assignee"))
        web = (self.cfg.web_url or self.cfg.url).rstrip("/")
        return RemoteIncident(
            remote_id=remote_id,
            number=as_text(item.get("ref_num")) or as_text(item.get("@COMMON_NAME")),
            url=f"{web}/CAisd/pdmweb.exe?OP=SHOW_DETAIL+PERSID=cr:{remote_id}",
            state=self._state(status, assignee) if status else "OPEN",
            remote_state=status,
            assignee=assignee,
        )

    # -- requests --------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.cfg.url}/caisd-rest/{path}"

    def _object(self, method: str, path: str, obj: str, **kwargs: Any) -> dict[str, Any]:
        answer = self.http.json(method, self._url(path), **kwargs)
        found = answer.get(obj) if isinstance(answer, dict) else None
        if not isinstance(found, dict) or not as_text(found.get("@id")):
            raise PermanentError(f"casdm: {method} {path}: no {obj} object in the answer")
        return found

    def _search(self, obj: str, where: str, size: int, attrs: str) -> list[dict[str, Any]]:
        answer = self.http.json(
            "GET",
            self._url(obj),
            params={"WC": where, "start": "1", "size": str(size)},
            headers={"X-Obj-Attrs": attrs},
        )
        return collection_items(answer, obj)

    def _write(self, ref: RemoteIncident, fields: dict[str, Any]) -> dict[str, Any]:
        return self._object(
            "PUT",
            f"in/{ref.remote_id}",
            "in",
            json={"in": object_body(fields)},
            headers={"X-Obj-Attrs": READ_ATTRS},
        )

    def _status_now(self, ref: RemoteIncident) -> str:
        item = self._object("GET", f"in/{ref.remote_id}", "in", headers={"X-Obj-Attrs": "status"})
        return rel_attr(item.get("status"))

    # -- the contract ------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        body = {**object_body(fields), "external_system_ticket": correlation_key}
        item = self._object(
            "POST", "in", "in", json={"in": body}, headers={"X-Obj-Attrs": READ_ATTRS}
        )
        return self._ref(item)

    def find(self, correlation_key: str) -> RemoteIncident | None:
        where = f"external_system_ticket = {quote(correlation_key)}"
        for item in self._search("in", where, 10, READ_ATTRS):
            if as_text(item.get("external_system_ticket")) == correlation_key:
                return self._ref(item)
        return None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        wanted = number.strip()
        for item in self._search("in", f"ref_num = {quote(wanted)}", 10, READ_ATTRS):
            if as_text(item.get("ref_num")) == wanted:
                return self._ref(item)
        return None

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        if fields:
            self._write(ref, fields)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        body = {
            "call_req_id": {"@REL_ATTR": f"cr:{ref.remote_id}"},
            "type": {"@REL_ATTR": self.cfg.note_type},
            "description": text,
        }
        self._object("POST", "alg", "alg", json={"alg": body})

    def _contact(self, userid: str) -> dict[str, Any]:
        found = self._search("cnt", f"userid = {quote(userid)}", 2, "userid,combo_name")
        matching = [c for c in found if as_text(c.get("userid")).lower() == userid.lower()]
        if not matching:
            raise PermanentError(f"casdm: no contact with userid {userid!r} (map users: user_map)")
        return matching[0]

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """The contact is looked up by userid; the incident's assignee set to it."""
        userid = self.cfg.user_map.get(assignee, assignee)
        if not userid:
            raise PermanentError(f"casdm: no assignee given for {ref.number}")
        contact = self._contact(userid)
        self._write(ref, {"assignee": {"@REL_ATTR": as_text(contact.get("@REL_ATTR"))}})

    def close(self, ref: RemoteIncident, note: str) -> None:
        try:
            self._write(ref, {"status": self.cfg.resolve_status})
        except PermanentError:
            # a retried close may find the incident closed already (inactive: refused)
            status = self._status_now(ref)
            if status != self.cfg.resolve_status and status not in self.cfg.final_statuses:
                raise
        if note:
            self.add_note(ref, note)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        """Back to reopen_status; CannotReopen when the incident is in a final status."""
        status = self._status_now(ref)
        if status in self.cfg.final_statuses:
            raise CannotReopen(f"casdm: {ref.number} is in final status {status} (inactive)")
        self._write(ref, {"status": self.cfg.reopen_status})
        if note:
            self.add_note(ref, note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        ids = list(dict.fromkeys(r.remote_id for r in refs if r.remote_id.isdigit()))
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), STATUS_CHUNK):
            chunk = ids[start : start + STATUS_CHUNK]
            where = " OR ".join(f"id = {i}" for i in chunk)
            for item in self._search("in", where, len(chunk), READ_ATTRS):
                ref = self._ref(item)
                if ref.remote_id in chunk:
                    out[ref.remote_id] = ref
        return out
