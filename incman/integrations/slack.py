"""Slack: one channel message per incident; notes, assignments and state changes in its thread.

The message templates use the field-mapping grammar and its whole context (`${evt/summary}`,
`${dev/titleOrId}`, `${urls/eventUrl}`, `${python: ...}`); they are rendered with the event
that opened the incident.

The parent message carries the incident in its metadata (event type `incman_incident`: the
correlation key, the state, a transition counter and the texts to show per state), so `find`
and every state change read Slack itself, never local memory. Slack keeps no incident status
to poll, and its messages have no number a person would type: the `status` and
`find_by_number` capabilities are not declared."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import requests

from incman.domain.mapping import apply_field_mapping, parse_field_mapping
from incman.domain.mapping_context import build_context
from incman.integrations.base import (
    ASSIGN,
    CLOSE,
    CREATE,
    FIND,
    NOTE,
    REOPEN,
    UPDATE,
    Integration,
    RemoteIncident,
)
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import PermanentError, TransientError
from incman.integrations.http import HttpClient, parse_retry_after

DEFAULT_API_URL = "https://slack.com/api"
INCIDENT_EVENT = "incman_incident"  # metadata event_type of a parent message
STATE_EVENT = "incman_state"  # metadata event_type of a state-change reply
DEFAULT_TEMPLATES = {
    "create": ":rotating_light: *${defaultFields/severityName}*: ${evt/summary}"
    " on ${dev/titleOrId}\n${urls/eventUrl}",
    "update": "Updated: ${evt/summary} (count ${evt/count})",
    "close": ":white_check_mark: *Closed*: ${evt/summary} on ${dev/titleOrId}\n${urls/eventUrl}",
    "reopen": ":repeat: *Re-opened*: ${evt/summary} on ${dev/titleOrId}\n${urls/eventUrl}",
}
# fields produced by default_fields, one per template
TEXT_FIELDS = {
    "create": "text",
    "update": "updateText",
    "close": "closeText",
    "reopen": "reopenText",
}
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal", "service_unavailable", "request_timeout"}
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
PAGE = 200


def render_text(template: str, context: dict[str, object]) -> str:
    """A template rendered line by line with the field-mapping grammar."""
    lines = []
    for line in template.splitlines() or [""]:
        value = apply_field_mapping({}, f"text, {line}", context).get("text", "")
        lines.append("" if value is None else str(value))
    return "\n".join(lines)


def _template(value: str) -> str | None:
    try:
        parse_field_mapping("\n".join(f"text, {line}" for line in value.splitlines()))
    except ValueError as exc:
        return str(exc)
    return None


def _template_setting(kind: str) -> Any:
    return setting(DEFAULT_TEMPLATES[kind], check=_template, help=f"text of the {kind} message")


class SlackConfig(IntegrationConfig):
    api_url: str = url_setting(DEFAULT_API_URL, help="the Web API's address")
    token: str = setting(required=True, secret=True, help="a bot token (xoxb-...)")
    channel: str = setting(required=True, help="a channel ID (C0123ABCD) or #name")
    find_depth: int = setting(PAGE, at_least=1, help="recent channel messages find reads")
    create_template: str = _template_setting("create")
    update_template: str = _template_setting("update")
    close_template: str = _template_setting("close")
    reopen_template: str = _template_setting("reopen")


class SlackIntegration(Integration[SlackConfig]):
    name = "slack"
    # No STATUS: a Slack message has no state anyone changes remotely to poll.
    capabilities = frozenset({CREATE, UPDATE, NOTE, ASSIGN, CLOSE, REOPEN, FIND})
    updates_on_change = True  # a thread reply rendered from update_template
    status_map: ClassVar[dict[str, str]] = {
        "open": "OPEN",
        "assigned": "ASSIGNED",
        "closed": "CLOSED",
    }

    _channel: str | None = None  # the configured channel's ID, once known

    def auth(self, session: HttpClient) -> None:
        session.use_header("Authorization", f"Bearer {self.cfg.token}")

    # -- transport ---------------------------------------------------------------------------
    def _call(
        self, method: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One Web API call; Slack reports most errors as HTTP 200 {"ok": false}."""
        url = f"{self.cfg.api_url}/{method}"
        if body is not None:
            resp = self.http.request("POST", url, json=body)
        else:
            resp = self.http.request("GET", url, params=params)
        try:
            data = resp.json()
        except ValueError:
            raise PermanentError(f"slack {method}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise PermanentError(f"slack {method}: unexpected answer {str(data)[:200]}")
        if not data.get("ok"):
            raise _api_error(method, data, resp)
        return data

    def channel_id(self) -> str:
        """The configured channel as an ID (history and updates accept no names)."""
        if self._channel is None:
            wanted = self.cfg.channel.lstrip("#")
            self._channel = wanted if _CHANNEL_ID.match(wanted) else self._lookup_channel(wanted)
        return self._channel

    def _lookup_channel(self, name: str) -> str:
        cursor = ""
        for _ in range(50):
            data = self._call(
                "conversations.list",
                params={
                    "types": "public_channel,private_channel",
                    "exclude_archived": "true",
                    "limit": PAGE,
                    "cursor": cursor,
                },
            )
            for channel in data.get("channels", []):
                if channel.get("name") == name:
                    return str(channel["id"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        raise PermanentError(
            f"slack: channel #{name} not found or not visible to the app; "
            "configure the channel ID (C...)"
        )

    # -- fields ------------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        """The base fields plus one text per template (`text`, `updateText`, ...)."""
        fields = super().default_fields(event, device, urls)
        context = build_context(event, device, urls, fields)
        for kind, field in TEXT_FIELDS.items():
            template = getattr(self.cfg, f"{kind}_template") or DEFAULT_TEMPLATES[kind]
            fields[field] = render_text(template, context)
        return fields

    # -- references ----------------------------------------------------------------------------
    def _ref(self, channel: str, ts: str, payload: dict[str, Any]) -> RemoteIncident:
        link = self._call("chat.getPermalink", params={"channel": channel, "message_ts": ts})
        state = str(payload.get("state") or "open")
        return RemoteIncident(
            remote_id=f"{channel}:{ts}",
            number=ts,
            url=str(link.get("permalink") or ""),
            state=self.map_state(state),
            remote_state=state,
            assignee=str(payload.get("assignee") or ""),
        )

    @staticmethod
    def _split(ref: RemoteIncident) -> tuple[str, str]:
        channel, sep, ts = ref.remote_id.partition(":")
        if not sep or not channel or not ts:
            raise PermanentError(f"slack: {ref.remote_id!r} is not a channel:ts reference")
        return channel, ts

    def _parent(self, channel: str, ts: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The parent message and its incident metadata payload."""
        data = self._call(
            "conversations.history",
            params={
                "channel": channel,
                "latest": ts,
                "inclusive": "true",
                "limit": 1,
                "include_all_metadata": "true",
            },
        )
        messages = [m for m in data.get("messages", []) if m.get("ts") == ts]
        if not messages:
            raise PermanentError(f"slack: message {ts} in {channel} is gone")
        return messages[0], _incident_payload(messages[0]) or {}

    # -- I/O ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        text = str(fields.get("text") or fields.get("summary") or "incident")
        payload = {
            "key": correlation_key,
            "state": "open",
            "seq": 0,
            "assignee": "",
            "text_open": text,
            "text_closed": str(fields.get("closeText") or text),
            "text_reopened": str(fields.get("reopenText") or text),
        }
        data = self._call(
            "chat.postMessage",
            body={
                "channel": self.channel_id(),
                "text": text,
                "unfurl_links": False,
                "metadata": {"event_type": INCIDENT_EVENT, "event_payload": payload},
            },
        )
        return self._ref(str(data["channel"]), str(data["ts"]), payload)

    def find(self, correlation_key: str) -> RemoteIncident | None:
        """The parent message with this key among the channel's `find_depth` latest."""
        channel, cursor, seen = self.channel_id(), "", 0
        while seen < self.cfg.find_depth:
            data = self._call(
                "conversations.history",
                params={
                    "channel": channel,
                    "limit": min(PAGE, self.cfg.find_depth - seen),
                    "include_all_metadata": "true",
                    "cursor": cursor,
                },
            )
            messages = data.get("messages", [])
            for message in messages:
                payload = _incident_payload(message)
                if payload is not None and payload.get("key") == correlation_key:
                    return self._ref(channel, str(message["ts"]), payload)
            seen += len(messages)
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor or not messages:
                break
        return None

    def _reply(
        self, channel: str, ts: str, text: str, metadata: dict[str, Any] | None = None
    ) -> None:
        body: dict[str, Any] = {
            "channel": channel,
            "thread_ts": ts,
            "text": text,
            "unfurl_links": False,
        }
        if metadata is not None:
            body["metadata"] = metadata
        self._call("chat.postMessage", body=body)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        channel, ts = self._split(ref)
        self._reply(channel, ts, text)

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        channel, ts = self._split(ref)
        self._reply(channel, ts, str(fields.get("updateText") or fields.get("text") or ""))

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        self._change_state(ref, "assigned", "open", f"Assigned to {assignee}", assignee)

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._change_state(ref, "closed", "closed", note or "Closed")

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._change_state(ref, "open", "reopened", note or "Re-opened")

    def _change_state(
        self, ref: RemoteIncident, state: str, text_key: str, note: str, assignee: str = ""
    ) -> None:
        """Show `state` on the parent and say why in the thread, once.

        A change already shown (a repeat, or a retry after the parent was updated) posts
        its thread reply only if that reply is missing: no double messages."""
        channel, ts = self._split(ref)
        parent, payload = self._parent(channel, ts)
        seq = int(payload.get("seq") or 0)
        if payload.get("state") == state and payload.get("assignee", "") == assignee:
            if not self._state_reply_posted(channel, ts, seq):
                self._reply(channel, ts, note, _state_metadata(state, seq))
            return
        seq += 1
        text = str(payload.get(f"text_{text_key}") or parent.get("text") or "")
        if assignee:
            text = f"{text}\n:bust_in_silhouette: Assigned to {assignee}"
        new_payload = {**payload, "state": state, "seq": seq, "assignee": assignee}
        self._call(
            "chat.update",
            body={
                "channel": channel,
                "ts": ts,
                "text": text,
                "metadata": {"event_type": INCIDENT_EVENT, "event_payload": new_payload},
            },
        )
        self._reply(channel, ts, note, _state_metadata(state, seq))

    def _state_reply_posted(self, channel: str, ts: str, seq: int) -> bool:
        cursor = ""
        for _ in range(50):
            data = self._call(
                "conversations.replies",
                params={
                    "channel": channel,
                    "ts": ts,
                    "limit": PAGE,
                    "include_all_metadata": "true",
                    "cursor": cursor,
                },
            )
            for message in data.get("messages", []):
                meta = message.get("metadata") or {}
                if (
                    meta.get("event_type") == STATE_EVENT
                    and (meta.get("event_payload") or {}).get("seq") == seq
                ):
                    return True
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        return False


def _incident_payload(message: dict[str, Any]) -> dict[str, Any] | None:
    meta = message.get("metadata") or {}
    if meta.get("event_type") != INCIDENT_EVENT or message.get("thread_ts") not in (
        None,
        message.get("ts"),
    ):
        return None
    payload = meta.get("event_payload")
    return payload if isinstance(payload, dict) else None


def _state_metadata(state: str, seq: int) -> dict[str, Any]:
    return {"event_type": STATE_EVENT, "event_payload": {"state": state, "seq": seq}}


def _api_error(method: str, data: dict[str, Any], resp: requests.Response) -> Exception:
    error = str(data.get("error") or "unknown_error")
    message = f"slack {method}: {error}"
    if data.get("needed"):
        message += f" (needs scope {data['needed']})"
    if error in TRANSIENT_ERRORS:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        return TransientError(message, retry_after, status=resp.status_code)
    return PermanentError(message, status=resp.status_code)
