"""Request Tracker 5 over REST2: tickets in a queue, found again by a custom field.

Fields are RT's own ticket fields: `Subject`, `Content`, `ContentType`, `Priority`, `Requestor`,
`Cc`, `AdminCc`, `Owner`, `Status`, `Due`, `Starts`, `TimeEstimated`, and `CF.<Name>` for a
custom field; other keys are not sent. RT answers a ticket PUT with 200 and a list of messages
even when a change was refused, so the messages are read (`check_messages`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import IntegrationError, PermanentError
from incman.integrations.http import HttpClient

TICKET_FIELDS = frozenset(
    {
        "Subject",
        "Content",
        "ContentType",
        "Priority",
        "Requestor",
        "Cc",
        "AdminCc",
        "Owner",
        "Status",
        "Due",
        "Starts",
        "TimeEstimated",
    }
)
NOBODY = "Nobody"
BATCH = 100  # REST2's largest page
# Messages of a change that happened, or had nothing to do.
_DONE = re.compile(
    r"changed from|already owns|^Ticket \d+: Ticket deleted$|Comments added", re.IGNORECASE
)
_NO_SUCH_USER = re.compile(r"That user does not exist", re.IGNORECASE)


def ticket_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The REST2 body for `fields`: RT ticket fields, and `CF.<Name>` as CustomFields."""
    body: dict[str, Any] = {k: v for k, v in fields.items() if k in TICKET_FIELDS}
    custom = {k[3:].strip("{}"): v for k, v in fields.items() if k.startswith("CF.")}
    if custom:
        body["CustomFields"] = custom
    return body


def check_messages(ticket_id: str, messages: Any, what: str) -> list[str]:
    """The messages of a PUT; PermanentError when one says a change was refused."""
    if not isinstance(messages, list):
        raise PermanentError(f"rt: ticket {ticket_id}: unexpected answer to {what}: {messages!r}")
    refused = [str(m) for m in messages if not _DONE.search(str(m))]
    if refused:
        raise PermanentError(f"rt: ticket {ticket_id}: {what} refused: {'; '.join(refused)}")
    return [str(m) for m in messages]


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RTConfig(IntegrationConfig):
    url: str = url_setting(required=True, help="RT's WebBaseURL")
    token: str = setting("", secret=True, help="an auth token (Authorization: token ...)")
    username: str = setting("", help="user of HTTP Basic auth, instead of a token")
    password: str = setting("", secret=True, help="its password")
    queue: str = setting("General", help="queue of new tickets")
    correlation_field: str = setting(
        "IncidentID", help="single-value ticket custom field applied to the queue"
    )
    user_map: dict[str, str] = setting({}, help="incman user → RT user, for assignments")

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.token and not (self.username and self.password):
            yield "token", "set token, or username and password"


class RTIntegration(Integration[RTConfig]):
    name = "rt"
    capabilities = ALL_CAPABILITIES
    status_map: ClassVar[dict[str, str]] = {
        "new": "OPEN",
        "open": "OPEN",
        "stalled": "OPEN",
        "resolved": "RESOLVED",
        "rejected": "CLOSED",
        "deleted": "CLOSED",
    }

    def auth(self, session: HttpClient) -> None:
        if self.cfg.token:
            session.use_header("Authorization", f"token {self.cfg.token}")
        else:
            session.use_basic(self.cfg.username, self.cfg.password)

    @property
    def field(self) -> str:
        return self.cfg.correlation_field

    # -- transport ---------------------------------------------------------------------------
    def _rest(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.json(method, f"{self.cfg.url}/REST/2.0/{path}", **kwargs)

    def _ticket(self, ticket_id: str) -> dict[str, Any]:
        data = self._rest("GET", f"ticket/{ticket_id}")
        if not isinstance(data, dict):
            raise PermanentError(f"rt: ticket {ticket_id}: unexpected answer {data!r}")
        return data

    def _ref(self, item: dict[str, Any]) -> RemoteIncident:
        ticket_id = str(item["id"])
        status = str(item.get("Status") or "")
        owner = item.get("Owner")
        owner = str(owner.get("id") if isinstance(owner, dict) else owner or NOBODY)
        state = self.map_state(status)
        if status in ("new", "open") and owner != NOBODY:
            state = "ASSIGNED"
        return RemoteIncident(
            remote_id=ticket_id,
            number=ticket_id,
            url=f"{self.cfg.url}/Ticket/Display.html?id={ticket_id}",
            state=state,
            remote_state=status,
            assignee="" if owner == NOBODY else owner,
        )

    # -- fields ------------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "Subject": str(event.get("summary") or ""),
            "Content": MappingUtils(urls).getDescription(event),
            "ContentType": "text/plain",
        }

    # -- I/O ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        body = ticket_body(fields)
        body["Queue"] = self.cfg.queue
        body["CustomFields"] = {**body.get("CustomFields", {}), self.field: correlation_key}
        if "Content" in body:
            body.setdefault("ContentType", "text/plain")
        created = self._rest("POST", "ticket", json=body)
        if not isinstance(created, dict) or not created.get("id"):
            raise PermanentError(f"rt: unexpected answer to a ticket create: {created!r}")
        ticket = self._ticket(str(created["id"]))
        # RT drops an unknown custom field without a word: check that the key is there.
        values = [
            v
            for cf in ticket.get("CustomFields") or []
            if cf.get("name") == self.field
            for v in cf.get("values") or []
        ]
        if correlation_key not in values:
            self._reject_orphan(str(created["id"]))
            raise PermanentError(
                f"rt: ticket {created['id']} did not keep the correlation key: the custom "
                f"field {self.field!r} must exist and apply to queue {self.cfg.queue!r} (the "
                "ticket was rejected)"
            )
        return self._ref(ticket)

    def _reject_orphan(self, ticket_id: str) -> None:
        """A ticket that cannot be found again would be created anew on every retry."""
        try:
            self._rest(
                "POST",
                f"ticket/{ticket_id}/comment",
                json={
                    "Content": f"Rejected by incman: the custom field {self.field} is missing.",
                    "ContentType": "text/plain",
                    "Status": "rejected",
                },
            )
        except IntegrationError:
            pass  # the create error below says what to fix; this is only tidying

    def find(self, correlation_key: str) -> RemoteIncident | None:
        query = f"'CF.{{{self.field}}}' = {_quote(correlation_key)}"
        data = self._rest(
            "GET",
            "tickets",
            params={"query": query, "fields": "Status,Owner", "per_page": 1, "orderby": "id"},
        )
        items = (data or {}).get("items") or []
        return self._ref(items[0]) if items else None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        """The ticket with this id (RT's number), when the API user may see it."""
        ticket_id = number.strip().lstrip("#")
        if not ticket_id.isdigit():
            return None
        try:
            return self._ref(self._ticket(ticket_id))
        except PermanentError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        body = ticket_body(fields)
        content = body.pop("Content", None)
        body.pop("ContentType", None)
        if body:
            check_messages(
                ref.remote_id, self._rest("PUT", f"ticket/{ref.remote_id}", json=body), "update"
            )
        if content:
            self.add_note(ref, str(content))

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._rest(
            "POST",
            f"ticket/{ref.remote_id}/comment",
            json={"Content": text, "ContentType": "text/plain"},
        )

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """Give the ticket to the RT user of that name; when RT has none, the API user
        takes it and a comment says who acknowledged."""
        user = self.cfg.user_map.get(assignee, assignee)
        if user:
            messages = self._rest("PUT", f"ticket/{ref.remote_id}", json={"Owner": user})
            if not (
                isinstance(messages, list) and any(_NO_SUCH_USER.search(str(m)) for m in messages)
            ):
                check_messages(ref.remote_id, messages, f"setting the owner to {user}")
                return
        messages = check_messages(
            ref.remote_id, self._rest("PUT", f"ticket/{ref.remote_id}/take", json={}), "take"
        )
        if assignee and any("changed from" in m for m in messages):
            self.add_note(
                ref,
                f"Acknowledged in incman by {assignee} (no RT user of that "
                "name: taken by the integration's user)",
            )

    def _set_status(self, ref: RemoteIncident, status: str, note: str) -> None:
        """One comment that also sets the status; nothing when the ticket is there already
        (a repeated close posts no second comment)."""
        if str(self._ticket(ref.remote_id).get("Status")) == status:
            return
        body: dict[str, Any] = {
            "Status": status,
            "ContentType": "text/plain",
            "Content": note or f"Status set to {status} by incman",
        }
        check_messages(
            ref.remote_id,
            self._rest("POST", f"ticket/{ref.remote_id}/comment", json=body),
            f"status {status}",
        )

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._set_status(ref, "resolved", note)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._set_status(ref, "open", note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """TicketSQL `id = 1 OR id = 2 ...`, 100 at a time; a ticket the search leaves out
        (RT hides deleted ones) is read on its own, and left out if it is gone."""
        ids = list(dict.fromkeys(r.remote_id for r in refs if r.remote_id.isdigit()))
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            data = self._rest(
                "GET",
                "tickets",
                params={
                    "query": " OR ".join(f"id = {i}" for i in chunk),
                    "fields": "Status,Owner",
                    "per_page": BATCH,
                },
            )
            for item in (data or {}).get("items") or []:
                out[str(item["id"])] = self._ref(item)
        for ticket_id in (i for i in ids if i not in out):
            try:
                out[ticket_id] = self._ref(self._ticket(ticket_id))
            except PermanentError:
                continue  # gone, or no longer visible to this user: unknown
        return out
