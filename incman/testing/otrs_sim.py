"""An OTRS / Znuny simulator: the GenericTicketConnectorREST web service.

It serves it as the reference (remote-apis.md "OTRS / Znuny") and Znuny's own sources
(Kernel/GenericInterface: the HTTP::REST transport, the Session and Ticket operations,
GenericTicketConnectorREST.yml) describe it.

What it keeps like Znuny:
- the stock routes (`POST /Session`, `GET /Session/:SessionID`, `POST /Ticket`,
  `GET /Ticket/:TicketID`, `GET /TicketList`, `GET /TicketHistory/:TicketID`, `GET /Ticket`
  for TicketSearch, `PATCH /Ticket/:TicketID`) plus the routes an admin adds
  (`search_route`: TicketSearch with POST; `logout_route`: SessionRemove with DELETE); an
  unknown route is HTTP 500, text/plain "HTTP::REST Error while determine Operation...";
- a GET reads its parameters from the query string only (repeated ones become a list), any
  other method from the JSON body, query parameters overriding the body's;
- operation failures as HTTP 200 `{"Error": {"ErrorCode", "ErrorMessage"}}` with the
  operations' own codes and texts, checked in the operations' order;
- credentials per call (`UserLogin` + `Password`) or a `SessionID` from `POST /Session`;
  sessions end after `session_max_idle` seconds idle, by the `401` fault, or by
  SessionRemove; an agent holds at most `sessions_per_user` sessions;
- TicketCreate needs Title, CustomerUser (a known customer or an email address), Queue,
  State and Priority (by name, known), an article with Subject, Body and ContentType on the
  Email, Internal or Phone channel, visible to the customer unless it says
  `IsVisibleForCustomer: 0`, and dynamic fields that exist; it answers TicketID,
  TicketNumber and ArticleID;
- TicketSearch drops a dynamic-field condition that is not an operator object or names an
  unknown field (and then returns every ticket), treats `*` and `%` as wildcards, sorts the
  newest first by default, answers `{"TicketID": [...]}` or `{}`;
- TicketGet of several ids fails whole (AccessDenied) when one of them does not exist."""

from __future__ import annotations

import fnmatch
import re
import secrets
import time
from typing import Any
from urllib.parse import unquote

from incman.testing.simbase import SimApp, SimError, SimRequest, SimResponse, Ticket

PATH = re.compile(r"^.*/Webservice(?:ID)?/(?P<name>[^/]+)(?P<route>/.*)?$")
STATE_TYPES = {
    "new": "new",
    "open": "open",
    "pending reminder": "pending reminder",
    "pending auto close+": "pending auto",
    "pending auto close-": "pending auto",
    "closed successful": "closed",
    "closed unsuccessful": "closed",
    "merged": "merged",
    "removed": "removed",
}
OPEN_TYPES = ("new", "open", "pending reminder", "pending auto")
PRIORITIES = ("1 very low", "2 low", "3 normal", "4 high", "5 very high")
# the MIME-based channels the web service accepts; unverified: these ids
CHANNELS = {"Email": "1", "Phone": "2", "Internal": "3"}
SENDER_TYPES = ("agent", "system", "customer")
MIME_TYPES = ("text/plain", "text/html")
CHARSETS = ("utf8", "utf-8", "iso-8859-1", "iso-8859-15", "us-ascii")
# unverified: CheckItem's CheckEmail does more (and may look up the domain's MX)
EMAIL = re.compile(r"^[^@\s<>]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
ADMIN = "root@localhost"  # OwnerID 1: the owner of every new ticket


def _list(value: str | list[str] | None, default: list[str]) -> list[str]:
    if value is None:
        return list(default)
    items = value.split(",") if isinstance(value, str) else value
    return [i.strip() for i in items if i.strip()]


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def parse_query(query: str) -> dict[str, Any]:
    """As the REST transport reads a query string: `;` or `&` between pairs, `+` a space,
    a name given twice a list."""
    out: dict[str, Any] = {}
    for pair in re.split(r"[;&]", query):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value.split("=")[0].replace("+", "%20"))
        if key not in out:
            out[key] = value
        elif isinstance(out[key], list):
            out[key].append(value)
        else:
            out[key] = [out[key], value]
    return out


class OperationError(Exception):
    """An operation's ReturnError: HTTP 200 with `{"Error": ...}`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _text_error(status: int, text: str) -> SimError:
    """The REST transport's own errors: plain text."""
    error = SimError(status, None, {"Content-Type": "text/plain; charset=UTF-8"})
    error.response.raw = text.encode()
    return error


class OTRSSim(SimApp):
    """Options: the `webservice` name, the API agent (`username`, `password`), other
    `agents` tickets may be given to, `customer_users`, the ticket `dynamic_fields`,
    `queues`, `ticket_types` (`type_required` as Ticket::Type), the admin's extra routes
    (`search_route`, `logout_route`; empty: not configured) and the session limits."""

    name = "otrs"

    def __init__(
        self,
        webservice: str = "GenericTicketConnectorREST",
        username: str = "incman",
        password: str = "incman-secret",
        agents: list[str] | str | None = None,
        customer_users: list[str] | str | None = None,
        dynamic_fields: list[str] | str | None = None,
        queues: list[str] | str | None = None,
        ticket_types: list[str] | str | None = None,
        type_required: bool | str = False,
        search_route: str = "/TicketSearch",
        logout_route: str = "/Session/:SessionID",
        session_max_idle: float | str = 7200,
        sessions_per_user: int | str = 20,
    ) -> None:
        super().__init__()
        self.webservice = webservice
        self.passwords = {username: password}
        self.agents = [username] + [
            a for a in _list(agents, ["oncall1", "oncall2", ADMIN]) if a != username
        ]
        self.customer_users = _list(customer_users, ["monitoring"])
        self.dynamic_fields = _list(dynamic_fields, ["IncmanKey"])
        self.queues = _list(queues, ["Raw", "Junk", "Misc", "Postmaster"])
        self.ticket_types = _list(ticket_types, ["Unclassified", "Incident", "Problem"])
        self.type_required = _flag(type_required)
        self.session_max_idle = float(session_max_idle)
        self.sessions_per_user = int(sessions_per_user)
        # RouteOperationMapping, looked through in the order of the operations' names
        routes = [
            ("SessionCreate", "POST", "/Session"),
            ("SessionGet", "GET", "/Session/:SessionID"),
            ("TicketCreate", "POST", "/Ticket"),
            ("TicketGet", "GET", "/Ticket/:TicketID"),
            ("TicketGetList", "GET", "/TicketList"),
            ("TicketHistoryGet", "GET", "/TicketHistory/:TicketID"),
            ("TicketSearch", "GET", "/Ticket"),
            ("TicketUpdate", "PATCH", "/Ticket/:TicketID"),
        ]
        if logout_route:
            routes.append(("SessionRemove", "DELETE", logout_route))
        if search_route:
            routes.append(("TicketSearchPost", "POST", search_route))
        self.routes = sorted(routes)
        self.reset()

    def reset(self) -> None:
        self.tickets_by_id: dict[int, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.next_ticket = 1
        self.next_article = 1
        self.logins = 0

    # -- transport ---------------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        return True  # each operation checks the credentials in its data

    def describe(self) -> str:
        url = f"{self.base_url}/otrs/nph-genericinterface.pl/Webservice/{self.webservice}"
        return (
            f"OTRS / Znuny simulator (GenericTicketConnectorREST) at {url}\n"
            f"  agent: {next(iter(self.passwords))}, customer users: "
            f"{', '.join(self.customer_users)}, dynamic fields: {', '.join(self.dynamic_fields)}\n"
            f"  notification config: {{url: {url}, username: ..., password: ..., "
            f"customer_user: {self.customer_users[0]}}}"
        )

    def error(self, status: int, message: str) -> SimResponse:
        if status == 500:  # an operation that failed outright: the transport's fault object
            return SimResponse(500, {"faultcode": "Server", "faultstring": message})
        # unverified: Znuny has no rate limit of its own; a 429 comes from a proxy in front
        return _text_error(status, message).response

    def expire_logins(self) -> None:
        self.sessions.clear()

    def logins_expired(self, req: SimRequest) -> SimResponse:
        """Sessions end; the request then gets what any request with a dead session gets."""
        self.expire_logins()
        try:
            return self.handle(req)
        except SimError as exc:
            return exc.response

    def handle(self, req: SimRequest) -> SimResponse:
        found = PATH.match(req.path)
        if not found or found["name"] != self.webservice:
            # unverified: the answer for an unknown web service name
            raise _text_error(500, f"Could not load web service configuration for {req.path}")
        route = found["route"] or "/"
        for operation, method, pattern in self.routes:
            regex = re.sub(r":([^/]+)", r"(?P<\1>[^/]+)", pattern)
            matched = re.fullmatch(regex, route)
            if method == req.method and matched:
                data = self._data(req, {k: unquote(v) for k, v in matched.groupdict().items()})
                try:
                    return SimResponse(200, getattr(self, f"_op_{operation}")(data))
                except OperationError as exc:
                    return SimResponse(
                        200, {"Error": {"ErrorCode": exc.code, "ErrorMessage": exc.message}}
                    )
        raise _text_error(
            500, f"HTTP::REST Error while determine Operation for request URI '{route}'."
        )

    @staticmethod
    def _data(req: SimRequest, uri: dict[str, str]) -> dict[str, Any]:
        params = {**parse_query(req.query_string), **uri}
        if req.method == "GET" or not req.raw:
            return {**params, "RequestMethod": req.method}
        if not isinstance(req.body, dict):
            raise _text_error(500, "Error while decoding request content.")
        return {**req.body, **params}

    # -- authentication ----------------------------------------------------------------------
    def _session_user(self, session_id: str) -> str | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        if time.monotonic() - session["last"] > self.session_max_idle:
            del self.sessions[session_id]
            return None
        session["last"] = time.monotonic()
        return str(session["user"])

    def _user(self, op: str, data: dict[str, Any], messages: tuple[str, str]) -> str:
        """Operation::Common::Auth, with the operation's own checks and texts before it."""
        session_id, login = data.get("SessionID"), data.get("UserLogin")
        if messages[0] and not (session_id or login or data.get("CustomerUserLogin")):
            raise OperationError(f"{op}.MissingParameter", messages[0])
        if messages[0] and login and not data.get("Password"):
            raise OperationError(
                f"{op}.MissingParameter", f"{op}: Password or SessionID is required!"
            )
        user = None
        if session_id:
            user = self._session_user(str(session_id))
        elif login and self.passwords.get(str(login)) == data.get("Password"):
            user = str(login)
        if user is None:
            raise OperationError(f"{op}.AuthFail", messages[1])
        return user

    def _op_SessionCreate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("Password"):
            raise OperationError(
                "SessionCreate.MissingParameter", "SessionCreate: Password parameter is missing!"
            )
        login = str(data.get("UserLogin") or "")
        held = sum(1 for s in self.sessions.values() if s["user"] == login)
        # unverified: that the web service's session create obeys AgentSessionPerUserLimit
        if self.passwords.get(login) != data["Password"] or held >= self.sessions_per_user:
            raise OperationError("SessionCreate.AuthFail", "SessionCreate: Authorization failing!")
        session_id = secrets.token_urlsafe(24)
        self.sessions[session_id] = {"user": login, "last": time.monotonic()}
        self.logins += 1
        return {"SessionID": session_id}

    def _op_SessionGet(self, data: dict[str, Any]) -> dict[str, Any]:
        # unverified: SessionGet's error code and the shape of its data
        user = self._session_user(str(data.get("SessionID") or ""))
        if user is None:
            raise OperationError("SessionGet.SessionInvalid", "SessionGet: SessionID is Invalid!")
        return {"SessionData": [{"Key": "UserLogin", "Value": user}]}

    def _op_SessionRemove(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("SessionID"):
            raise OperationError(
                "SessionRemove.MissingParameter", "SessionRemove: SessionID parameter is missing!"
            )
        if self.sessions.pop(str(data["SessionID"]), None) is None:
            raise OperationError("SessionRemove.Fail", "SessionRemove: Could not remove SessionID!")
        return {"Success": 1}

    # -- checks ------------------------------------------------------------------------------
    def _check_ticket(self, op: str, ticket: dict[str, Any], creating: bool) -> None:
        def missing(text: str) -> OperationError:
            return OperationError(f"{op}.MissingParameter", f"{op}: {text}")

        def invalid(text: str) -> OperationError:
            return OperationError(f"{op}.InvalidParameter", f"{op}: {text}")

        if creating:
            for needed in ("Title", "CustomerUser"):
                if not ticket.get(needed):
                    raise missing(f"Ticket->{needed} parameter is missing!")
        customer = ticket.get("CustomerUser")
        if customer and customer not in self.customer_users and not EMAIL.match(str(customer)):
            raise invalid("Ticket->CustomerUser parameter is invalid!")
        checks = (
            ("Queue", self.queues, creating),
            ("Type", self.ticket_types, creating and self.type_required),
            ("State", list(STATE_TYPES), creating),
            ("Priority", list(PRIORITIES), creating),
            ("Owner", self.agents, False),
            ("Responsible", self.agents, False),
            ("Lock", ["lock", "unlock", "tmp_lock"], False),
        )
        for name, known, required in checks:
            value = ticket.get(name, ticket.get(f"{name}ID"))
            if required and not value:
                raise missing(f"Ticket->{name}ID or Ticket->{name} parameter is required!")
            if value and value not in known:
                # TicketCreate's texts; unverified: that TicketUpdate's read the same
                raise invalid(f"Ticket->{name}ID or Ticket->{name} parameter is invalid!")

    def _check_article(self, op: str, article: dict[str, Any]) -> dict[str, Any]:
        article = {
            "AutoResponseType": "auto reply",  # unverified: the sysconfig default's value
            "CommunicationChannel": "Internal",
            "IsVisibleForCustomer": 1,  # the sysconfig default: customers see it
            "SenderType": "agent",
            **article,
        }
        for needed in ("Subject", "Body"):
            if not article.get(needed):
                raise OperationError(
                    f"{op}.MissingParameter", f"{op}: Article->{needed} parameter is missing!"
                )
        if article["CommunicationChannel"] not in CHANNELS:
            raise OperationError(
                f"{op}.InvalidParameter",
                f"{op}: Article->CommunicationChannel or Article->CommunicationChannelID "
                "parameter is invalid or not supported!",
            )
        if article["SenderType"] not in SENDER_TYPES:
            raise OperationError(
                f"{op}.InvalidParameter",
                f"{op}: Article->SenderTypeID or Ticket->SenderType parameter is invalid!",
            )
        content = str(article.get("ContentType") or "").lower()
        if not content and not article.get("MimeType"):
            raise OperationError(
                f"{op}.MissingParameter",
                f"{op}: Article->ContentType or Ticket->MimeType and Article->Charset "
                "parameters are required!",
            )
        if content:
            mime, _, rest = content.partition(";")
            charset = rest.split("charset=")[-1].strip(" \"'") if "charset=" in rest else ""
            if mime.strip() not in MIME_TYPES or charset not in CHARSETS:
                raise OperationError(
                    f"{op}.InvalidParameter", f"{op}: Article->ContentType is invalid!"
                )
        return article

    def _check_fields(self, op: str, raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            return []
        items = [raw] if isinstance(raw, dict) else raw
        if not isinstance(items, list) or not items:
            raise OperationError(
                f"{op}.MissingParameter", f"{op}: DynamicField parameter is missing or not valid!"
            )
        for item in items:
            if not isinstance(item, dict) or "Name" not in item or "Value" not in item:
                raise OperationError(
                    f"{op}.MissingParameter", f"{op}: DynamicField->Name  parameter is missing!"
                )
            if item["Name"] not in self.dynamic_fields:
                raise OperationError(
                    f"{op}.InvalidParameter", f"{op}: DynamicField->Name parameter is invalid!"
                )
        return items

    # -- tickets -----------------------------------------------------------------------------
    def _add_article(self, ticket: dict[str, Any], article: dict[str, Any], by: str) -> str:
        article_id = str(self.next_article)
        self.next_article += 1
        ticket["articles"].append(
            {
                "ArticleID": article_id,
                "Subject": str(article.get("Subject", "")),
                "Body": str(article.get("Body", "")),
                "ContentType": str(article.get("ContentType", "")),
                "CommunicationChannelID": CHANNELS.get(article.get("CommunicationChannel", ""), ""),
                "IsVisibleForCustomer": 1 if _flag(article.get("IsVisibleForCustomer")) else 0,
                "SenderType": article.get("SenderType", "agent"),
                "CreatedBy": by,
                "CreateTime": _now(),
            }
        )
        return article_id

    def _set(self, ticket: dict[str, Any], changes: dict[str, Any], by: str) -> None:
        for name in ("Title", "Queue", "Priority", "Type", "Owner", "Responsible", "Lock"):
            if changes.get(name):
                if ticket.get(name) != changes[name]:
                    ticket["history"].append({"HistoryType": f"{name}Update", "By": by})
                ticket[name] = changes[name]
        state = changes.get("State")
        if state and state != ticket["State"]:
            ticket["State"] = state
            ticket["history"].append({"HistoryType": "StateUpdate", "By": by, "Value": state})
            if STATE_TYPES[state] not in OPEN_TYPES and "Lock" not in changes:
                ticket["Lock"] = "unlock"  # unverified: closing a ticket unlocks it
        ticket["Changed"] = _now()

    def _op_TicketCreate(self, data: dict[str, Any]) -> dict[str, Any]:
        op = "TicketCreate"
        user = self._user(
            op,
            data,
            (
                "TicketCreate: UserLogin, CustomerUserLogin or SessionID is required!",
                "TicketCreate: User could not be authenticated!",
            ),
        )
        for needed in ("Ticket", "Article"):
            if not isinstance(data.get(needed), dict) or not data[needed]:
                raise OperationError(
                    f"{op}.MissingParameter", f"{op}: {needed} parameter is missing or not valid!"
                )
        values = {k: str(v).strip() for k, v in data["Ticket"].items() if isinstance(v, str)}
        self._check_ticket(op, values, creating=True)
        article = self._check_article(op, data["Article"])
        fields = self._check_fields(op, data.get("DynamicField"))
        ticket_id = self.next_ticket
        self.next_ticket += 1
        # DateChecksum: date, SystemID 10, counter, check digit (unverified: the digit's sum)
        number = f"{time.strftime('%Y%m%d', time.gmtime())}10{ticket_id:05d}{ticket_id * 7 % 10}"
        ticket: dict[str, Any] = {
            "TicketID": str(ticket_id),
            "TicketNumber": number,
            "Title": values["Title"],
            "Queue": values["Queue"],
            "State": values["State"],
            "Priority": values["Priority"],
            "Type": values.get("Type", "Unclassified"),
            "Owner": values.get("Owner", ADMIN),
            "Responsible": values.get("Responsible", ADMIN),
            "Lock": values.get("Lock", "unlock"),
            "CustomerUserID": values["CustomerUser"],
            "Created": _now(),
            "Changed": _now(),
            "CreateBy": user,
            "dynamic": {f["Name"]: f["Value"] for f in fields},
            "articles": [],
            "history": [{"HistoryType": "NewTicket", "By": user}],
        }
        article_id = self._add_article(ticket, article, user)
        self.tickets_by_id[ticket_id] = ticket
        # unverified: ids as JSON strings (they come from the database as text)
        return {"TicketID": str(ticket_id), "TicketNumber": number, "ArticleID": article_id}

    def _op_TicketUpdate(self, data: dict[str, Any]) -> dict[str, Any]:
        op = "TicketUpdate"
        if not data:
            raise OperationError(f"{op}.EmptyRequest", f"{op}: The request data is invalid!")
        if not data.get("TicketID") and not data.get("TicketNumber"):
            raise OperationError(
                f"{op}.MissingParameter", f"{op}: TicketID or TicketNumber is required!"
            )
        user = self._user(
            op,
            data,
            (
                "TicketUpdate: UserLogin, CustomerUserLogin or SessionID is required!",
                "TicketUpdate: User could not be authenticated!",
            ),
        )
        ticket = self._find(str(data.get("TicketID") or data.get("TicketNumber")))
        if ticket is None:
            raise OperationError(
                f"{op}.AccessDenied", "TicketUpdate: User does not have access to the ticket!"
            )
        changes = data.get("Ticket")
        if changes is not None and (not isinstance(changes, dict) or not changes):
            raise OperationError(f"{op}.InvalidParameter", f"{op}: Ticket parameter is not valid!")
        changes = {k: str(v).strip() for k, v in (changes or {}).items() if isinstance(v, str)}
        self._check_ticket(op, changes, creating=False)
        raw = data.get("Article")
        articles = [raw] if isinstance(raw, dict) and raw else raw or []
        if not isinstance(articles, list):
            raise OperationError(f"{op}.InvalidParameter", f"{op}: Article parameter is not valid!")
        checked = [self._check_article(op, a) for a in articles if isinstance(a, dict)]
        fields = self._check_fields(op, data.get("DynamicField"))
        self._set(ticket, changes, user)
        ticket["dynamic"].update({f["Name"]: f["Value"] for f in fields})
        answer = {"TicketID": ticket["TicketID"], "TicketNumber": ticket["TicketNumber"]}
        for article in checked:
            answer["ArticleID"] = self._add_article(ticket, article, user)
            ticket["history"].append({"HistoryType": "AddNote", "By": user})
        return answer

    def _find(self, ref: str) -> dict[str, Any] | None:
        if ref.isdigit() and int(ref) in self.tickets_by_id:
            return self.tickets_by_id[int(ref)]
        return next((t for t in self.tickets_by_id.values() if t["TicketNumber"] == ref), None)

    def _render(self, ticket: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in ticket.items() if k not in ("dynamic", "articles", "history")}
        out["StateType"] = STATE_TYPES[ticket["State"]]
        if _flag(data.get("DynamicFields")):
            out["DynamicField"] = [
                {"Name": name, "Value": ticket["dynamic"].get(name)} for name in self.dynamic_fields
            ]
        if _flag(data.get("AllArticles")):
            out["Article"] = [dict(a) for a in ticket["articles"]]
        return out

    def _op_TicketGet(self, data: dict[str, Any]) -> dict[str, Any]:
        op = "TicketGet"
        self._user(op, data, ("", "TicketGet: Authorization failing!"))
        raw = data.get("TicketID")
        if not raw:
            raise OperationError(f"{op}.MissingParameter", f"{op}: TicketID parameter is missing!")
        ids = [i.strip() for i in raw.split(",")] if isinstance(raw, str) else [str(i) for i in raw]
        if not all(re.fullmatch(r"[1-9]\d*", i) for i in ids):
            raise OperationError(
                f"{op}.WrongStructure", f"{op}: Invalid ticket ID parameter(s) found!"
            )
        if any(int(i) not in self.tickets_by_id for i in ids):  # one gone: the whole call fails
            raise OperationError(
                f"{op}.AccessDenied", "TicketGet: User does not have access to the ticket!"
            )
        return {"Ticket": [self._render(self.tickets_by_id[int(i)], data) for i in ids]}

    _op_TicketGetList = _op_TicketGet

    def _op_TicketHistoryGet(self, data: dict[str, Any]) -> dict[str, Any]:
        self._user("TicketHistoryGet", data, ("", "TicketHistoryGet: Authorization failing!"))
        ticket = self._find(str(data.get("TicketID") or ""))
        if ticket is None:
            raise OperationError(
                "TicketHistoryGet.AccessDenied",
                "TicketHistoryGet: User does not have access to the ticket!",
            )
        # unverified: the fields of a history entry
        return {"TicketHistory": [{"TicketID": ticket["TicketID"], "History": ticket["history"]}]}

    # -- search ------------------------------------------------------------------------------
    def _dynamic_conditions(self, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """TicketSearch::_GetDynamicFields: operator objects only, for fields that exist."""
        raw: dict[str, Any] = {}
        given = data.get("DynamicField")
        if isinstance(given, dict):
            raw = {str(given.get("Name")): given}
        elif isinstance(given, list):
            raw = {str(g.get("Name")): g for g in given if isinstance(g, dict)}
        elif not given:
            for key, value in data.items():
                found = re.fullmatch(r"DynamicField_([A-Za-z\d]+)", key)
                if found:
                    raw[found[1]] = value
        return {
            name: {k: v for k, v in raw[name].items() if k != "Name"}
            for name in self.dynamic_fields
            if isinstance(raw.get(name), dict) and raw[name]
        }

    @staticmethod
    def _like(value: Any, patterns: Any) -> bool:
        wanted = patterns if isinstance(patterns, list) else [patterns]
        text = "" if value is None else str(value)
        return any(
            fnmatch.fnmatchcase(text.lower(), str(p).replace("%", "*").lower()) for p in wanted
        )

    def _matches(self, ticket: dict[str, Any], data: dict[str, Any]) -> bool:
        for name, field in (("TicketNumber", "TicketNumber"), ("Title", "Title")):
            if data.get(name) not in (None, "", []) and not self._like(ticket[field], data[name]):
                return False
        ids = data.get("TicketID")
        if ids not in (None, "", []) and ticket["TicketID"] not in (
            [str(i) for i in ids] if isinstance(ids, list) else [str(ids)]
        ):
            return False
        for name, field in (("Queues", "Queue"), ("States", "State"), ("Locks", "Lock")):
            wanted = data.get(name)
            if wanted and ticket[field] not in (wanted if isinstance(wanted, list) else [wanted]):
                return False
        state_type = data.get("StateType")
        kind = STATE_TYPES[ticket["State"]]
        if state_type in ("Open", "Closed"):
            if (kind in OPEN_TYPES) != (state_type == "Open"):
                return False
        elif state_type and kind not in (
            state_type if isinstance(state_type, list) else [state_type]
        ):
            return False
        for name, ops in self._dynamic_conditions(data).items():
            value = ticket["dynamic"].get(name)
            if "Equals" in ops:
                wanted = ops["Equals"] if isinstance(ops["Equals"], list) else [ops["Equals"]]
                if value is None or str(value) not in [str(w) for w in wanted]:
                    return False
            if "Like" in ops and not self._like(value, ops["Like"]):
                return False
            if "Empty" in ops and bool(value) == _flag(ops["Empty"]):
                return False
        return True

    def _op_TicketSearch(self, data: dict[str, Any]) -> dict[str, Any]:
        self._user("TicketSearch", data, ("", "TicketSearch: Authorization failing!"))
        try:
            limit = int(data.get("Limit") or 500)
        except (TypeError, ValueError):
            limit = 500
        found = [t for t in self.tickets_by_id.values() if self._matches(t, data)]
        # unverified: that the default (SortBy Age, OrderBy Down) lists the newest first
        found.sort(key=lambda t: int(t["TicketID"]), reverse=data.get("OrderBy", "Down") == "Down")
        ids = [t["TicketID"] for t in found[:limit]]
        return {"TicketID": ids} if ids else {}

    _op_TicketSearchPost = _op_TicketSearch

    # -- control -----------------------------------------------------------------------------
    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """As an agent in the UI: `State`, `Owner`, `Lock`, `Priority`, `Title`, and `note`
        (an internal article); `by` names the agent."""
        ticket = self._find(record_id)
        if ticket is None:
            raise SimError(404, {"error": f"no ticket {record_id}"})
        by = str(changes.pop("by", ADMIN))
        note = changes.pop("note", None)
        values = {k: str(v) for k, v in changes.items()}
        try:
            self._check_ticket("Agent", values, creating=False)
        except OperationError as exc:
            raise SimError(400, {"error": exc.message}) from None
        self._set(ticket, values, by)
        if note:
            self._add_article(
                ticket,
                {"Subject": "Note", "Body": note, "CommunicationChannel": "Internal"},
                by,
            )
        return self._dump(ticket)

    def _dump(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return {**self._render(ticket, {"DynamicFields": 1, "AllArticles": 1}), **ticket}

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=t["TicketID"],
                number=t["TicketNumber"],
                keys=[str(v) for v in t["dynamic"].values() if v],
                state=t["State"],
                assignee=t["Owner"] if t["Lock"] == "lock" else "",
                notes=[a["Body"] for a in t["articles"][1:]],
            )
            for t in self.tickets_by_id.values()
        ]

    def state(self) -> dict[str, Any]:
        return {
            "tickets": [self._dump(t) for t in self.tickets_by_id.values()],
            "sessions": len(self.sessions),
            "logins": self.logins,
        }
