"""OTRS / Znuny through the GenericTicketConnectorREST web service.

A ticket with its first article and a dynamic field holding the correlation key, internal
notes, states by name. The web service trips clients up; this plugin meets each trap: failures
come as HTTP 200 (`check_answer` raises them; an AuthFail on a session logs in again, once), a
GET cannot search a dynamic field (`find` posts to `search_route` and checks what comes back),
TicketGet of several ids fails whole (status reads search the ids first), and an article is
visible to the customer unless it says otherwise (notes say `IsVisibleForCustomer: 0`).
(the traps in full, fields: docs/remote-systems.md)"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import requests

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, INCIDENT_STATES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import (
    CannotReopen,
    IntegrationError,
    PermanentError,
    TransientError,
)
from incman.integrations.http import HttpClient

log = logging.getLogger(__name__)

TICKET_FIELDS = frozenset(
    {"Title", "Queue", "State", "Priority", "Type", "Service", "SLA", "Owner", "Responsible"}
    | {"CustomerUser", "CustomerID", "Lock"}
)
ARTICLE_FIELDS = frozenset(
    {"Subject", "Body", "ContentType", "From", "CommunicationChannel", "IsVisibleForCustomer"}
    | {"SenderType", "TimeUnit"}
)
DYNAMIC = "DynamicField_"
PERMANENT_CODES = frozenset(
    {"AuthFail", "AccessDenied", "MissingParameter", "InvalidParameter", "WrongStructure"}
    | {"EmptyRequest", "InvalidConfiguration", "NotValidTicketID", "NotTicketData"}
)
NO_ROUTE = "Error while determine Operation"  # the REST transport's 500 for an unknown route
TEXT = "text/plain; charset=utf8"
BATCH = 100
# event severity → OTRS's stock priorities
PRIORITIES = {5: "5 very high", 4: "4 high", 3: "3 normal", 2: "2 low", 1: "1 very low"}
STATES = {
    **dict.fromkeys(("new", "open", "pending reminder"), "OPEN"),
    **dict.fromkeys(("pending auto close+", "pending auto close-"), "RESOLVED"),
    **dict.fromkeys(("closed successful", "closed unsuccessful"), "RESOLVED"),
    **dict.fromkeys(("merged", "removed"), "CLOSED"),
}
# a state of its own (a custom one) not in the map is read by its state type
STATE_TYPES = {"pending auto": "RESOLVED", "closed": "RESOLVED"}
STATE_TYPES |= dict.fromkeys(("merged", "removed"), "CLOSED")


def _alnum(value: Any) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9]+", str(value)) else "letters and digits only"


def _states(value: Any) -> str | None:
    wrong = sorted(k for k, v in value.items() if v not in INCIDENT_STATES)
    return f"{', '.join(wrong)}: must map to one of {', '.join(INCIDENT_STATES)}" if wrong else None


def _ids(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw] if raw not in (None, "") else []
    return [str(i) for i in items]


class OTRSConfig(IntegrationConfig):
    """Tickets in OTRS / Znuny over the GenericTicketConnectorREST web service."""

    url: str = url_setting(
        required=True,
        help="the web service: https://host/otrs/nph-genericinterface.pl/Webservice/NAME",
    )
    username: str = setting(required=True, help="the agent incman acts as (UserLogin)")
    password: str = setting(required=True, secret=True, help="its password")
    session: bool = setting(False, help="log in once (POST /Session); false: every call logs in")
    logout_route: str = setting(
        "/Session/:SessionID", help="route of SessionRemove (DELETE) ending a session; empty: none"
    )
    search_route: str = setting(
        "/TicketSearch", help="route of TicketSearch with POST (a GET cannot search dynamic fields)"
    )
    queue: str = setting("Raw", help="queue of new tickets")
    customer_user: str = setting(
        required=True, help="CustomerUser of new tickets: a customer login or an email address"
    )
    ticket_type: str = setting("", help="Type of new tickets (needed where Ticket::Type is on)")
    new_state: str = setting("new", help="state of new tickets")
    correlation_field: str = setting(
        "IncmanKey", check=_alnum, help="ticket dynamic field (text) holding the correlation key"
    )
    resolve_state: str = setting("closed successful", help="the state a close sets")
    reopen_state: str = setting("open", help="the state a re-open sets")
    final_states: tuple[str, ...] = setting(
        ("merged", "removed"), help="states that cannot be re-opened (a new ticket instead)"
    )
    state_map: dict[str, str] = setting(
        {},
        check=_states,
        help="state name → OPEN / ASSIGNED / RESOLVED / CLOSED, over the stock states",
    )
    user_map: dict[str, str] = setting({}, help="incman user → OTRS agent login")

    def check(self) -> Iterator[tuple[str, str]]:
        for name in ("search_route", "logout_route"):
            route = getattr(self, name)
            if route and not route.startswith("/"):
                yield name, "must start with /"


class OTRSIntegration(Integration[OTRSConfig]):
    name = "otrs"
    capabilities = ALL_CAPABILITIES
    status_map: ClassVar[dict[str, str]] = STATES
    session_id = ""

    # -- login and errors ------------------------------------------------------------------
    def auth(self, session: HttpClient) -> None:
        if not self.cfg.session:
            return
        body = {"UserLogin": self.cfg.username, "Password": self.cfg.password}
        # params: the SessionID of a login that ran out is not sent along (None drops it)
        answer = session.json(
            "POST", f"{self.cfg.url}/Session", json=body, params={"SessionID": None}
        )
        if not isinstance(answer, dict) or not answer.get("SessionID"):
            raise PermanentError("otrs: POST /Session answered no SessionID")
        self.session_id = str(answer["SessionID"])
        session.use_param("SessionID", self.session_id)

    def auth_expired(self, error: IntegrationError) -> bool:
        # an invalid session is refused as any bad login: "<Operation>.AuthFail" in a 200
        return self.cfg.session and error.status == 200 and ".AuthFail:" in str(error)

    def logout(self, session: HttpClient) -> None:
        if self.session_id and self.cfg.logout_route:
            path = self.cfg.logout_route.replace(":SessionID", self.session_id)
            session.request("DELETE", f"{self.cfg.url}{path}")

    def check_answer(self, method: str, url: str, resp: requests.Response) -> None:
        try:
            doc = resp.json()
        except ValueError:
            return  # not JSON: the caller says so
        error = doc.get("Error") if isinstance(doc, dict) else None
        if not isinstance(error, dict):
            return
        code = str(error.get("ErrorCode") or "")
        path = url[len(self.cfg.url) :] if url.startswith(self.cfg.url) else url
        text = f"otrs: {method} {path}: {code}: {error.get('ErrorMessage') or ''}"
        if code.rpartition(".")[2] in PERMANENT_CODES:
            raise PermanentError(text, status=resp.status_code)
        raise TransientError(text, status=resp.status_code)

    def call_budget(self) -> float:
        return 3 * super().call_budget()  # a login, a search and a read before a create

    # -- transport -------------------------------------------------------------------------
    def _call(self, method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
        """One operation; `data` goes in the query string of a GET, else as the JSON body."""
        creds = {} if self.cfg.session else {"UserLogin": self.cfg.username}
        if creds:
            creds["Password"] = self.cfg.password
        url = f"{self.cfg.url}{path}"
        try:
            if method == "GET":
                answer = self.http.json(method, url, params={**data, **creds})
            else:
                answer = self.http.json(method, url, json={**data, **creds})
        except TransientError as exc:
            if exc.status == 500 and NO_ROUTE in str(exc):  # the web service lacks the route
                raise PermanentError(f"otrs: the web service has no route {method} {path}") from exc
            raise
        if not isinstance(answer, dict):
            raise PermanentError(f"otrs: {method} {path}: unexpected answer {answer!r:.200}")
        return answer

    def _tickets(self, ids: list[str], dynamic: bool = False) -> list[dict[str, Any]]:
        if not ids:
            return []
        query = {"DynamicFields": "1" if dynamic else "0"}
        found = self._call("GET", f"/Ticket/{','.join(ids)}", query).get("Ticket")
        return [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []

    def _search(self, method: str, path: str, query: dict[str, Any]) -> list[str]:
        answer = self._call(method, path, {"SearchInArchive": "AllTickets", **query})
        return sorted(_ids(answer.get("TicketID")), key=lambda i: int(i) if i.isdigit() else 0)

    # -- states and references -------------------------------------------------------------
    def map_state(self, remote_state: str, state_type: str = "") -> str:
        if remote_state in self.cfg.final_states:
            return "CLOSED"
        return (
            self.cfg.state_map.get(remote_state)
            or STATES.get(remote_state)
            or STATE_TYPES.get(state_type, "OPEN")
        )

    def _ref(self, ticket: dict[str, Any]) -> RemoteIncident:
        ticket_id, state = str(ticket.get("TicketID")), str(ticket.get("State") or "")
        locked = ticket.get("Lock") == "lock"
        mapped = self.map_state(state, str(ticket.get("StateType") or ""))
        base = self.cfg.url.split("/nph-genericinterface.pl", 1)
        return RemoteIncident(
            remote_id=ticket_id,
            number=str(ticket.get("TicketNumber") or ""),
            url=f"{base[0]}/index.pl?Action=AgentTicketZoom;TicketID={ticket_id}"
            if len(base) == 2
            else "",
            state="ASSIGNED" if mapped == "OPEN" and locked else mapped,
            remote_state=state,
            assignee=str(ticket.get("Owner") or "") if locked else "",
        )

    # -- fields ------------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        summary = str(event.get("summary") or "")[:255]
        fields = {
            "Title": summary,
            "Queue": self.cfg.queue,
            "State": self.cfg.new_state,
            "Priority": PRIORITIES.get(int(event.get("severity", 3)), "1 very low"),
            "CustomerUser": self.cfg.customer_user,
            "Subject": summary,
            "Body": MappingUtils(urls).getDescription(event),
            "ContentType": TEXT,
        }
        if self.cfg.ticket_type:
            fields["Type"] = self.cfg.ticket_type
        return fields

    def _split(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The request parts of `fields`: Ticket, Article and DynamicField."""
        ticket = {k: v for k, v in fields.items() if k in TICKET_FIELDS}
        article = {k: v for k, v in fields.items() if k in ARTICLE_FIELDS}
        dynamic = [
            {"Name": k[len(DYNAMIC) :], "Value": v}
            for k, v in fields.items()
            if k.startswith(DYNAMIC) and k[len(DYNAMIC) :] != self.cfg.correlation_field
        ]
        unknown = sorted(k for k in fields if k not in TICKET_FIELDS | ARTICLE_FIELDS)
        unknown = [k for k in unknown if not k.startswith(DYNAMIC)]
        if unknown:
            raise PermanentError(
                f"otrs: unknown field {', '.join(unknown)} (ticket fields: "
                f"{', '.join(sorted(TICKET_FIELDS))}; article fields: "
                f"{', '.join(sorted(ARTICLE_FIELDS))}; dynamic fields: {DYNAMIC}<Name>)"
            )
        parts: dict[str, Any] = {"Ticket": ticket} if ticket else {}
        if article:
            parts["Article"] = self._article(article)
        if dynamic:
            parts["DynamicField"] = dynamic
        return parts

    @staticmethod
    def _article(article: dict[str, Any], subject: str = "Update from incman") -> dict[str, Any]:
        """An article agents see and the customer does not, unless the fields say so."""
        return {
            "CommunicationChannel": "Internal",
            "IsVisibleForCustomer": 0,
            "SenderType": "agent",
            "Subject": subject,
            "Body": "",
            "ContentType": TEXT,
            **article,
        }

    # -- the contract --------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        parts = self._split(fields)
        ticket = parts.setdefault("Ticket", {})
        parts["Article"] = self._article(parts.get("Article", {}), str(ticket.get("Title", "")))
        key = {"Name": self.cfg.correlation_field, "Value": correlation_key}
        parts["DynamicField"] = [*parts.get("DynamicField", []), key]
        answer = self._call("POST", "/Ticket", parts)
        if not answer.get("TicketID") or not answer.get("TicketNumber"):
            raise PermanentError(f"otrs: the create answered no TicketID: {answer!r:.200}")
        state = str(ticket.get("State") or "")
        return self._ref(
            {"TicketID": answer["TicketID"], "TicketNumber": answer["TicketNumber"], "State": state}
        )

    def find(self, correlation_key: str) -> RemoteIncident | None:
        field = self.cfg.correlation_field
        query = {f"{DYNAMIC}{field}": {"Equals": correlation_key}, "Limit": 10}
        ids = self._search("POST", self.cfg.search_route, query)
        for ticket in self._tickets(ids, dynamic=True):
            # a condition on a field OTRS does not know is dropped: check the key is there
            fields = ticket.get("DynamicField") or []
            if {"Name": field, "Value": correlation_key} in fields:
                return self._ref(ticket)
        return None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        wanted = number.strip().removeprefix("Ticket#").strip()
        if not wanted.isdigit():  # `*` and `%` would be wildcards to TicketSearch
            return None
        ids = self._search("GET", "/Ticket", {"TicketNumber": wanted, "Limit": 10})
        for ticket in self._tickets(ids):
            if str(ticket.get("TicketNumber")) == wanted:
                return self._ref(ticket)
        return None

    def _update(self, ref: RemoteIncident, parts: dict[str, Any]) -> None:
        self._call("PATCH", f"/Ticket/{ref.remote_id}", parts)

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        parts = self._split(fields)
        if "Article" in parts and not parts["Article"]["Body"]:
            del parts["Article"]  # OTRS refuses an article without a body
        if parts:
            self._update(ref, parts)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._update(ref, {"Article": self._article({"Body": text}, "Note from incman")})

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """Owner and lock to the agent of that name; when OTRS has none, the integration's
        agent takes the ticket and an internal note says who acknowledged."""
        agent = self.cfg.user_map.get(assignee, assignee)
        if agent:
            try:
                self._update(ref, {"Ticket": {"Owner": agent, "Lock": "lock"}})
                return
            except PermanentError as exc:
                if "Ticket->Owner" not in str(exc):
                    raise
                log.info("otrs: no agent %r for %s: taken by %s", agent, ref.number, exc)
        article = self._article(
            {"Body": f"Acknowledged in incman by {assignee} (no OTRS agent of that name)."}
            if assignee
            else {"Body": "Acknowledged in incman."},
            "Acknowledged",
        )
        ticket = {"Owner": self.cfg.username, "Lock": "lock"}
        self._update(ref, {"Ticket": ticket, "Article": article})

    def _now(self, ref: RemoteIncident) -> RemoteIncident:
        tickets = self._tickets([ref.remote_id])
        if not tickets:
            raise PermanentError(f"otrs: ticket {ref.remote_id} is gone")
        return self._ref(tickets[0])

    def close(self, ref: RemoteIncident, note: str) -> None:
        """The resolve state with the note as an internal article; nothing when the ticket
        is closed already (a retried close adds no second article)."""
        if self._now(ref).state in ("RESOLVED", "CLOSED"):
            return
        article = self._article({"Body": note or "Closed by incman"}, "Closed by incman")
        self._update(ref, {"Ticket": {"State": self.cfg.resolve_state}, "Article": article})

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        now = self._now(ref)
        if now.remote_state in self.cfg.final_states:
            raise CannotReopen(f"otrs: ticket {now.number} is {now.remote_state}")
        if now.state in ("OPEN", "ASSIGNED"):
            return
        article = self._article({"Body": note or "Re-opened by incman"}, "Re-opened by incman")
        self._update(ref, {"Ticket": {"State": self.cfg.reopen_state}, "Article": article})

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """A search by id first (TicketGet fails whole for one ticket gone), then one read."""
        ids = list(dict.fromkeys(r.remote_id for r in refs if r.remote_id.isdigit()))
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            found = self._search("GET", "/Ticket", {"TicketID": chunk, "Limit": len(chunk)})
            for ticket in self._tickets([i for i in found if i in chunk]):
                ref = self._ref(ticket)
                out[ref.remote_id] = ref
        return out
