"""A Slack Web API simulator: channels, messages with ts, threads, metadata and permalinks.

Serves `<base>/api/<method>` like https://slack.com/api: arguments as query parameters, form
fields or a JSON body; `Authorization: Bearer <token>` (or a `token` argument); errors as
HTTP 200 `{"ok": false, "error": ...}`. Methods: auth.test, chat.postMessage, chat.update,
chat.getPermalink, conversations.history, conversations.replies, conversations.list.
Permalinks point at `<base>/archives/<channel>/p<ts>`, which shows the message and its thread.

Besides the shared faults (simbase), `POST /_sim/slack_errors {"error": "channel_not_found",
"method": "chat.postMessage", "count": 1}` makes the next matching calls answer `ok: false`
with that error (`ratelimited` comes as HTTP 429 with Retry-After, as Slack sends it)."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from incman.testing.simbase import (
    SimApp,
    SimError,
    SimRequest,
    SimResponse,
    Ticket,
    bearer_token,
)

DEFAULT_TOKEN = "xoxb-incman-sim"
DEFAULT_CHANNELS = {"C0INCMAN1": "incidents", "C0INCMAN2": "general"}
BOT_USER, BOT_ID, TEAM_ID = "U0INCMAN", "B0INCMAN", "T0INCMAN"
MAX_LIMIT = 999
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")


@dataclass
class Message:
    ts: str
    text: str
    user: str = BOT_USER
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    edited_ts: str | None = None
    replies: list[Message] = field(default_factory=list)
    broadcast: bool = False

    def render(self, with_metadata: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "user": self.user,
        }
        if self.user == BOT_USER:
            out["bot_id"] = BOT_ID
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.replies:
            out.update(
                thread_ts=self.ts,
                reply_count=len(self.replies),
                latest_reply=self.replies[-1].ts,
                reply_users=sorted({r.user for r in self.replies}),
            )
        if self.edited_ts:
            out["edited"] = {"user": BOT_USER, "ts": self.edited_ts}
        if with_metadata and self.metadata:
            out["metadata"] = self.metadata
        return out


class SlackError(SimError):
    def __init__(self, error: str, status: int = 200, **extra: Any) -> None:
        super().__init__(status, {"ok": False, "error": error, **extra})


@dataclass
class _InjectedError:
    error: str
    count: int = 1
    method: str = ""
    retry_after: float = 1.0


class SlackSim(SimApp):
    """The state of one workspace."""

    name = "slack"

    def __init__(
        self, token: str = DEFAULT_TOKEN, channels: dict[str, str] | str | None = None
    ) -> None:
        """`channels`: ID → name, or as text `C0ALERTS1=alerts,C0OPS0001=ops`."""
        super().__init__()
        self.token = token
        self.channel_names = _channels(channels) if channels else dict(DEFAULT_CHANNELS)
        self.channels: dict[str, list[Message]] = {cid: [] for cid in self.channel_names}
        self.by_ts: dict[str, tuple[str, Message]] = {}
        self.injected: list[_InjectedError] = []
        self._last_ts = 0.0

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    def describe(self) -> str:
        channels = ", ".join(f"{cid} (#{name})" for cid, name in self.channel_names.items())
        return f"Slack simulator: api_url {self.api_url}, token {self.token}, channels {channels}"

    # -- simbase hooks ---------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        if req.path.startswith("/archives/"):
            return True  # a permalink, opened in a browser
        return (bearer_token(req.headers) or _args(req).get("token")) == self.token

    def error(self, status: int, message: str) -> SimResponse:
        if status == 401:
            return SimResponse(200, {"ok": False, "error": "invalid_auth"})
        if status == 429:
            return SimResponse(429, {"ok": False, "error": "ratelimited"})
        return SimResponse(status, {"ok": False, "error": "internal_error", "detail": message})

    def reset(self) -> None:
        self.channels = {cid: [] for cid in self.channel_names}
        self.by_ts.clear()
        self.injected.clear()

    def state(self) -> dict[str, Any]:
        return {
            "channels": {
                cid: {
                    "name": self.channel_names[cid],
                    "messages": [
                        dict(m.render(True), replies=[r.render(True) for r in m.replies])
                        for m in messages
                    ],
                }
                for cid, messages in self.channels.items()
            }
        }

    def tickets(self) -> list[Ticket]:
        """Parent messages that carry an incident in their metadata."""
        out = []
        for channel, messages in self.channels.items():
            for message in messages:
                meta = message.metadata or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") != "incman_incident":
                    continue
                out.append(
                    Ticket(
                        id=f"{channel}:{message.ts}",
                        number=message.ts,
                        keys=[str(payload.get("key", ""))],
                        state=str(payload.get("state", "")),
                        assignee=str(payload.get("assignee", "")),
                        notes=[r.text for r in message.replies],
                    )
                )
        return out

    def act(self, record_id: str, changes: dict[str, Any]) -> Any:
        """A person in the channel: `{"reply": "text"}` answers in the thread of message
        `record_id` (a ts), `{"text": "..."}` edits it."""
        if record_id not in self.by_ts:
            raise SimError(404, {"error": f"no message {record_id}"})
        channel, message = self.by_ts[record_id]
        if "reply" in changes:
            reply = self.add_message(
                channel,
                str(changes["reply"]),
                thread_ts=record_id,
                user=str(changes.get("user") or "U0PERSON1"),
            )
            return reply.render(True)
        if "text" in changes:
            message.text = str(changes["text"])
            message.edited_ts = self._next_ts()
        return message.render(True)

    def control(self, req: SimRequest) -> SimResponse:
        if req.path.rstrip("/") == "/_sim/slack_errors" and req.method == "POST":
            body = req.body if isinstance(req.body, dict) else {}
            if not body.get("error"):
                return SimResponse(400, {"error": "give the Slack error, e.g. channel_not_found"})
            with self.lock:
                self.injected.append(
                    _InjectedError(
                        str(body["error"]),
                        int(body.get("count", 1)),
                        str(body.get("method", "")),
                        float(body.get("retry_after", 1.0)),
                    )
                )
            return SimResponse(201, {"injected": len(self.injected)})
        return super().control(req)

    def handle(self, req: SimRequest) -> SimResponse:
        if req.path.startswith("/archives/"):
            return self._archive(req.path)
        if not req.path.startswith("/api/"):
            raise SimError(404, {"ok": False, "error": "unknown_method"})
        method = req.path[len("/api/") :]
        self._raise_injected(method)
        handler = _METHODS.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        return SimResponse(200, {"ok": True, **handler(self, _args(req))})

    def _raise_injected(self, method: str) -> None:
        for item in self.injected:
            if not item.method or item.method == method:
                item.count -= 1
                if item.count <= 0:
                    self.injected.remove(item)
                if item.error == "ratelimited":
                    raise SimError(
                        429,
                        {"ok": False, "error": "ratelimited"},
                        {"Retry-After": f"{item.retry_after:g}"},
                    )
                raise SlackError(item.error)

    # -- state helpers ---------------------------------------------------------------------
    def _next_ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _channel(self, ref: Any, names_ok: bool = False) -> str:
        ref = str(ref or "")
        if ref in self.channels:
            return ref
        if names_ok:
            for cid, name in self.channel_names.items():
                if name == ref.lstrip("#"):
                    return cid
        raise SlackError("channel_not_found")

    def _message(self, channel: str, ts: Any) -> Message:
        found = self.by_ts.get(str(ts or ""))
        if found is None or found[0] != channel:
            raise SlackError("message_not_found")
        return found[1]

    def add_message(
        self,
        channel: str,
        text: str,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        user: str = BOT_USER,
        broadcast: bool = False,
    ) -> Message:
        message = Message(self._next_ts(), text, user, thread_ts, metadata, broadcast=broadcast)
        if thread_ts:
            self._message(channel, thread_ts).replies.append(message)
        if not thread_ts or broadcast:
            self.channels[channel].append(message)
        self.by_ts[message.ts] = (channel, message)
        return message

    def _archive(self, path: str) -> SimResponse:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or not parts[2].startswith("p") or len(parts[2]) < 8:
            raise SimError(404, {"error": "no such permalink"})
        digits = parts[2][1:]
        ts = f"{digits[:-6]}.{digits[-6:]}"
        found = self.by_ts.get(ts)
        if found is None or found[0] != parts[1]:
            raise SimError(404, {"error": "no such message"})
        message = found[1]
        return SimResponse(
            200,
            {
                "channel": parts[1],
                "message": message.render(False),
                "thread": [r.render(False) for r in message.replies],
            },
        )

    # -- methods -----------------------------------------------------------------------------
    def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self.base_url}/",
            "team": "incman-sim",
            "user": "incman",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
        }

    def post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"), names_ok=True)
        text = str(args.get("text") or "")
        if not text and not args.get("blocks"):
            raise SlackError("no_text")
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts:
            parent = self._message(channel, thread_ts)
            if parent.thread_ts:
                thread_ts = parent.thread_ts  # a reply to a reply joins the same thread
        message = self.add_message(
            channel,
            text,
            thread_ts,
            _metadata(args.get("metadata")),
            broadcast=_true(args.get("reply_broadcast")),
        )
        return {"channel": channel, "ts": message.ts, "message": message.render(True)}

    def update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("ts"))
        if message.user != BOT_USER:
            raise SlackError("cant_update_message")
        if "text" in args:
            message.text = str(args["text"])
        if "metadata" in args:
            message.metadata = _metadata(args["metadata"])
        message.edited_ts = self._next_ts()
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.render(True),
        }

    def permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("message_ts"))
        link = f"{self.base_url}/archives/{channel}/p{message.ts.replace('.', '')}"
        if message.thread_ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        latest, oldest = float(args.get("latest") or "inf"), float(args.get("oldest") or 0)
        inclusive = _true(args.get("inclusive"))
        found = [
            m
            for m in reversed(self.channels[channel])
            if (oldest < float(m.ts) < latest) or (inclusive and float(m.ts) in (latest, oldest))
        ]
        return _page(
            found, args, with_metadata=_true(args.get("include_all_metadata")), default_limit=100
        )

    def replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        try:
            parent = self._message(channel, args.get("ts"))
        except SlackError:
            raise SlackError("thread_not_found") from None
        if parent.thread_ts:
            parent = self._message(channel, parent.thread_ts)
        return _page(
            [parent, *parent.replies],
            args,
            with_metadata=_true(args.get("include_all_metadata")),
            default_limit=1000,
        )

    def list_channels(self, args: dict[str, Any]) -> dict[str, Any]:
        items = [
            {"id": cid, "name": name, "is_channel": True, "is_archived": False, "is_member": True}
            for cid, name in self.channel_names.items()
        ]
        limit, offset = _limit(args, 100), _offset(args.get("cursor"))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return {
            "channels": page,
            "response_metadata": {"next_cursor": _cursor(offset + limit) if more else ""},
        }


_METHODS = {
    "auth.test": SlackSim.auth_test,
    "chat.postMessage": SlackSim.post_message,
    "chat.update": SlackSim.update,
    "chat.getPermalink": SlackSim.permalink,
    "conversations.history": SlackSim.history,
    "conversations.replies": SlackSim.replies,
    "conversations.list": SlackSim.list_channels,
}


def _channels(raw: dict[str, str] | str) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    out = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        cid, sep, name = item.partition("=")
        if not sep or not CHANNEL_ID.match(cid) or not name:
            raise ValueError(f"channels: {item!r} is not ID=name (an ID like C0ALERTS1)")
        out[cid] = name.lstrip("#")
    return out


def _args(req: SimRequest) -> dict[str, Any]:
    """Arguments as Slack reads them: query, then form fields, then a JSON body."""
    args: dict[str, Any] = dict(req.query)
    if "application/x-www-form-urlencoded" in req.headers.get("content-type", "") and req.raw:
        form = parse_qs(req.raw.decode(errors="replace"), keep_blank_values=True)
        args.update({k: v[0] for k, v in form.items()})
    if isinstance(req.body, dict):
        args.update(req.body)
    return args


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _metadata(raw: Any) -> dict[str, Any] | None:
    if raw in (None, "", {}):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SlackError("invalid_metadata_format") from None
    if (
        not isinstance(raw, dict)
        or not raw.get("event_type")
        or not isinstance(raw.get("event_payload"), dict)
    ):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": str(raw["event_type"]), "event_payload": raw["event_payload"]}


def _limit(args: dict[str, Any], default: int) -> int:
    try:
        return max(1, min(MAX_LIMIT, int(args.get("limit") or default)))
    except ValueError:
        raise SlackError("invalid_limit") from None


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(str(cursor)).decode().split(":", 1)[1])
    except (ValueError, IndexError):
        raise SlackError("invalid_cursor") from None


def _page(
    messages: list[Message], args: dict[str, Any], with_metadata: bool, default_limit: int
) -> dict[str, Any]:
    limit, offset = _limit(args, default_limit), _offset(args.get("cursor"))
    page = messages[offset : offset + limit]
    more = offset + limit < len(messages)
    return {
        "messages": [m.render(with_metadata) for m in page],
        "has_more": more,
        "response_metadata": {"next_cursor": _cursor(offset + limit) if more else ""},
    }
