"""A Mastodon simulator: one account's statuses, threads, edits and rate limits.

It speaks the REST API (`/api/v1/...`) as the reference describes it (remote-apis.md) and
Mastodon's source behaves.

Served: `POST /api/v1/statuses` (JSON or form fields; `status`, `in_reply_to_id`,
`visibility`, `spoiler_text`, `sensitive`, `language`; the `Idempotency-Key` header returns
the status the same key made within `idempotency_ttl` seconds), `GET`/`PUT`/`DELETE
/api/v1/statuses/:id`, `.../source`, `.../context`, `.../history`,
`GET /api/v1/accounts/verify_credentials` and `GET /api/v2/instance`; a status's page
`/@<user>/<id>` (HTML, as its owner sees it signed in).

Like Mastodon: ids are strings and `content` is HTML; the text and the content warning
together may have `max_characters` (a link counts 23), or the answer is 422 `{"error":
"Validation failed: Text character limit of 500 exceeded"}`; an edit replaces every field (a
content warning not sent again is gone); only the account's own statuses may be edited or have
their source read (404 otherwise). Every API answer carries X-RateLimit-Limit/Remaining/Reset
(ISO 8601) for the token: `rate_limit` requests per `rate_period` seconds, in windows aligned
on the clock as Rack::Attack counts them; past the limit the answer is 429 `{"error": "Too
many requests"}` with the same headers and no Retry-After (the `429` fault answers the same
way, its Reset `retry_after` seconds ahead)."""

from __future__ import annotations

import html
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from incman.integrations.mastodon import URL_LENGTH, parse_label
from incman.testing.simbase import (
    Fault,
    SimApp,
    SimError,
    SimRequest,
    SimResponse,
    Ticket,
    bearer_token,
)

DEFAULT_TOKEN = "mastodon-sim-token"
USERNAME = "incman"
VISIBILITIES = ("public", "unlisted", "private", "direct")
STATUS_PATH = re.compile(r"^/api/v1/statuses/(?P<id>\d+)(?:/(?P<sub>source|context|history))?$")
PAGE_PATH = re.compile(r"^/@(?P<user>[\w.]+)/(?P<id>\d+)$")
_URL = re.compile(r"https?://[^\s<>\"]+")
# unverified: Mastodon counts grapheme clusters; code points without variation selectors and
# zero-width joiners come close for the texts incman writes
_NOT_COUNTED = re.compile("[\ufe0e\ufe0f\u200d]")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _html(text: str) -> str:
    """Text as Mastodon renders it: paragraphs, line breaks, escaped, links made links."""

    def linked(line: str) -> str:
        out, pos = [], 0
        for match in _URL.finditer(line):
            out.append(html.escape(line[pos : match.start()]))
            url = html.escape(match.group())
            # unverified: the exact markup of links (Mastodon adds spans around the parts)
            out.append(f'<a href="{url}" rel="nofollow noopener" target="_blank">{url}</a>')
            pos = match.end()
        out.append(html.escape(line[pos:]))
        return "".join(out)

    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(
        f"<p>{'<br />'.join(linked(x) for x in p.split(chr(10)))}</p>" for p in paragraphs
    )


def counted(text: str) -> int:
    return len(_NOT_COUNTED.sub("", _URL.sub("x" * URL_LENGTH, text)))


@dataclass
class Status:
    id: str
    text: str
    visibility: str
    account: str = USERNAME
    spoiler_text: str = ""
    sensitive: bool = False
    language: str | None = "en"
    in_reply_to_id: str | None = None
    created_at: float = field(default_factory=time.time)
    edited_at: float | None = None
    key: str = ""  # the Idempotency-Key it was made with (for /_sim/tickets)
    edits: list[dict[str, Any]] = field(default_factory=list)


class MastodonSim(SimApp):
    """One server, one account (`incman`) whose token the plugin uses; other people's
    replies come through `POST /_sim/records/<id>`."""

    name = "mastodon"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        max_characters: int | str = 500,
        rate_limit: int | str = 300,
        rate_period: int | str = 300,
        idempotency_ttl: float | str = 3600.0,
    ) -> None:
        super().__init__()
        self.token = token
        self.max_characters = int(max_characters)
        self.rate_limit = int(rate_limit)
        self.rate_period = int(rate_period)
        self.idempotency_ttl = float(idempotency_ttl)
        if self.max_characters < 1 or self.rate_limit < 1 or self.rate_period <= 0:
            raise ValueError("max_characters, rate_limit and rate_period must be positive")
        self.reset()

    def describe(self) -> str:
        return (
            f"Mastodon simulator at {self.base_url}: access_token {self.token}, account "
            f"@{USERNAME}, {self.rate_limit} requests per {self.rate_period}s"
        )

    # -- simbase hooks ---------------------------------------------------------------------
    def reset(self) -> None:
        self.statuses: dict[str, Status] = {}
        self.idempotency: dict[str, tuple[str, float]] = {}  # key → (status id, expiry)
        self.window: tuple[int, int] = (0, 0)  # (window number, requests counted in it)
        self._ids = itertools.count(int(time.time() * 1000) << 16)

    def authenticate(self, req: SimRequest) -> bool:
        if req.path == "/api/v2/instance":
            return True  # the instance's description is public
        return bearer_token(req.headers) == self.token

    def error(self, status: int, message: str) -> SimResponse:
        if status == 401:
            message = "The access token is invalid"
        elif status == 429:
            message = "Too many requests"  # unverified: the wording of errors.429
        return SimResponse(status, {"error": message})

    def rate_limited(self, fault: Fault) -> SimResponse:
        """Rack::Attack's answer: the quota headers, Remaining 0, and no Retry-After."""
        resp = self.error(429, "")
        resp.headers.update(self._quota_headers(0, time.time() + fault.retry_after))
        return resp

    def state(self) -> dict[str, Any]:
        return {"statuses": [self._render(s) for s in self.statuses.values()]}

    def tickets(self) -> list[Ticket]:
        """Top-level statuses made with an Idempotency-Key, their state from the first line."""
        out = []
        for status in self.statuses.values():
            if status.in_reply_to_id or not status.key:
                continue
            state, assignee = parse_label(status.text.partition("\n")[0]) or ("", "")
            replies = [s.text for s in self.statuses.values() if s.in_reply_to_id == status.id]
            out.append(Ticket(status.id, status.id, [status.key], state, assignee, replies))
        return out

    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        """Someone else replies (`{"reply": "text", "user": "alice"}`), or the account's
        owner edits the text in the web interface (`{"text": "..."}`)."""
        status = self.statuses.get(record_id)
        if status is None:
            raise SimError(404, {"error": "Record not found"})
        if "reply" in changes:
            reply = self._new(str(changes["reply"]), status.visibility, record_id)
            reply.account = str(changes.get("user") or "someone")
            return self._render(reply)
        if "text" in changes:
            self._edit(status, str(changes["text"]), status.spoiler_text, status.sensitive)
        return self._render(status)

    # -- requests ----------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        if req.path == "/api/v2/instance":
            return SimResponse(200, self._instance())
        remaining, reset = self._count()
        headers = self._quota_headers(remaining, reset)
        if remaining < 0:
            return SimResponse(429, {"error": "Too many requests"}, headers)
        try:
            resp = self._route(req)
        except SimError as exc:
            resp = exc.response
        # unverified: the quota headers on error answers too (Rack::Attack counts them all)
        resp.headers.update(headers)
        return resp

    def _count(self) -> tuple[int, float]:
        """This request counted in the token's window (Rack::Attack's: whole seconds since
        the epoch divided by the period): (remaining, Reset as Mastodon computes it)."""
        now = time.time()
        number = int(now) // self.rate_period
        count = self.window[1] + 1 if self.window[0] == number else 1
        self.window = (number, count)
        return self.rate_limit - count, now + self.rate_period - int(now) % self.rate_period

    def _quota_headers(self, remaining: int, reset: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
        }

    def _route(self, req: SimRequest) -> SimResponse:
        if req.path == "/api/v1/accounts/verify_credentials" and req.method == "GET":
            return SimResponse(200, self._account(USERNAME))
        if req.path == "/api/v1/statuses" and req.method == "POST":
            return SimResponse(200, self._render(self._create(req)))
        match = STATUS_PATH.match(req.path)
        if match is None:
            raise SimError(404, {"error": "Not Found"})
        status = self.statuses.get(match["id"])
        own = status is not None and status.account == USERNAME
        sub = match["sub"]
        if status is None or ((sub == "source" or req.method in ("PUT", "DELETE")) and not own):
            raise SimError(404, {"error": "Record not found"})
        if req.method == "GET" and sub is None:
            return SimResponse(200, self._render(status))
        if req.method == "GET" and sub == "source":
            return SimResponse(
                200, {"id": status.id, "text": status.text, "spoiler_text": status.spoiler_text}
            )
        if req.method == "GET" and sub == "context":
            return SimResponse(200, self._context(status))
        if req.method == "GET" and sub == "history":
            return SimResponse(200, status.edits or [self._snapshot(status)])
        if req.method == "PUT" and sub is None:
            args = _args(req)
            spoiler = str(args.get("spoiler_text") or "")  # not sent: gone, as in Mastodon
            text = str(args.get("status") or "") or spoiler
            self._validate(text, spoiler)
            self._edit(status, text, spoiler, _true(args.get("sensitive")) or bool(spoiler))
            return SimResponse(200, self._render(status))
        if req.method == "DELETE" and sub is None:
            del self.statuses[status.id]
            # unverified: the deleted status comes back with its source text (to redraft)
            return SimResponse(200, {**self._render(status), "text": status.text})
        raise SimError(404, {"error": "Not Found"})

    def _create(self, req: SimRequest) -> Status:
        key = req.headers.get("idempotency-key", "")
        now = time.time()
        known = self.idempotency.get(key) if key else None
        if known is not None and known[1] > now and known[0] in self.statuses:
            return self.statuses[known[0]]
        args = _args(req)
        spoiler = str(args.get("spoiler_text") or "")
        text = str(args.get("status") or "") or spoiler
        visibility = str(args.get("visibility") or "public")
        if visibility not in VISIBILITIES:
            # unverified: the wording of an unknown visibility's 422
            raise SimError(
                422, {"error": f"Validation failed: '{visibility}' is not a valid visibility"}
            )
        reply_to = str(args.get("in_reply_to_id") or "") or None
        if reply_to is not None and reply_to not in self.statuses:
            # unverified: the wording (statuses.errors.in_reply_not_found); the 404 is Mastodon's
            raise SimError(
                404, {"error": "The post you are trying to reply to does not appear to exist."}
            )
        self._validate(text, spoiler)
        status = self._new(text, visibility, reply_to)
        status.spoiler_text = spoiler
        status.sensitive = _true(args.get("sensitive")) or bool(spoiler)
        status.language = str(args.get("language") or "") or "en"  # unverified: detected there
        if key:
            status.key = key
            self.idempotency[key] = (status.id, now + self.idempotency_ttl)
        return status

    def _validate(self, text: str, spoiler: str) -> None:
        if not text.strip():
            raise SimError(422, {"error": "Validation failed: Text can't be blank"})
        if counted(text) + counted(spoiler) > self.max_characters:
            raise SimError(
                422,
                {
                    "error": "Validation failed: Text character limit of "
                    f"{self.max_characters} exceeded"
                },
            )

    # -- state -------------------------------------------------------------------------------
    def _new(self, text: str, visibility: str, reply_to: str | None) -> Status:
        status = Status(str(next(self._ids)), text, visibility, in_reply_to_id=reply_to)
        self.statuses[status.id] = status
        return status

    def _edit(self, status: Status, text: str, spoiler: str, sensitive: bool) -> None:
        if (text, spoiler, sensitive) == (status.text, status.spoiler_text, status.sensitive):
            return  # no change: Mastodon leaves edited_at as it was
        if not status.edits:
            status.edits.append(self._snapshot(status))  # the original, as the first version
        status.text, status.spoiler_text, status.sensitive = text, spoiler, sensitive
        status.edited_at = time.time()
        status.edits.append(self._snapshot(status))

    def _snapshot(self, status: Status) -> dict[str, Any]:
        return {
            "content": _html(status.text),
            "spoiler_text": status.spoiler_text,
            "sensitive": status.sensitive,
            "created_at": _iso(status.edited_at or status.created_at),
            "account": self._account(status.account),
            "poll": None,
            "media_attachments": [],
            "emojis": [],
        }

    def _account(self, username: str) -> dict[str, Any]:
        return {
            "id": "1" if username == USERNAME else str(abs(hash(username)) % 10**9),
            "username": username,
            "acct": username,
            "display_name": username,
            "url": f"{self.base_url}/@{username}",
        }

    def _render(self, status: Status) -> dict[str, Any]:
        parent = self.statuses.get(status.in_reply_to_id or "")
        return {
            "id": status.id,
            "created_at": _iso(status.created_at),
            "edited_at": _iso(status.edited_at) if status.edited_at else None,
            "in_reply_to_id": status.in_reply_to_id,
            "in_reply_to_account_id": self._account(parent.account)["id"] if parent else None,
            "sensitive": status.sensitive,
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility,
            "language": status.language,
            "uri": f"{self.base_url}/users/{status.account}/statuses/{status.id}",
            "url": f"{self.base_url}/@{status.account}/{status.id}",
            "replies_count": sum(s.in_reply_to_id == status.id for s in self.statuses.values()),
            "reblogs_count": 0,
            "favourites_count": 0,
            "content": _html(status.text),
            "reblog": None,
            "account": self._account(status.account),
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }

    def _context(self, status: Status) -> dict[str, Any]:
        ancestors: list[dict[str, Any]] = []
        parent = self.statuses.get(status.in_reply_to_id or "")
        while parent is not None:
            ancestors.insert(0, self._render(parent))
            parent = self.statuses.get(parent.in_reply_to_id or "")
        descendants: list[dict[str, Any]] = []
        frontier = [status.id]
        while frontier:
            children = [s for s in self.statuses.values() if s.in_reply_to_id in frontier]
            descendants.extend(self._render(s) for s in children)
            frontier = [s.id for s in children]
        return {"ancestors": ancestors, "descendants": descendants}

    def _instance(self) -> dict[str, Any]:
        return {
            "domain": self.base_url.split("//", 1)[-1],
            "title": "incman's Mastodon simulator",
            "configuration": {
                "statuses": {
                    "max_characters": self.max_characters,
                    "characters_reserved_per_url": URL_LENGTH,
                }
            },
        }

    def page(self, req: SimRequest) -> SimResponse | None:
        """`/@<user>/<id>`: the status and its replies, as the account's owner sees them
        signed in (any visibility)."""
        found = PAGE_PATH.match(req.path)
        if found is None:
            return None
        status = self.statuses.get(found["id"])
        if status is None or status.account != found["user"]:
            return self.html_page(404, "The page you are looking for isn't here.", [], [])
        first, _, rest = status.text.partition("\n")
        shown = [("state", first), ("text", rest), ("visibility", status.visibility)]
        replies = [
            f"@{s.account}: {s.text}"
            for s in self.statuses.values()
            if s.in_reply_to_id == status.id
        ]
        return self.html_page(200, f"@{status.account}: {status.id}", shown, replies)


def _args(req: SimRequest) -> dict[str, Any]:
    """The request's parameters: a JSON object, or form fields."""
    if isinstance(req.body, dict):
        return req.body
    if "application/x-www-form-urlencoded" in req.headers.get("content-type", ""):
        return {k: v[0] for k, v in parse_qs(req.raw.decode(errors="replace")).items()}
    return dict(req.query)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "on")
