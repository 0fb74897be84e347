"""Mastodon, the "popular site" example: a status per incident, with replies in its thread.

The incident's state is shown on the status's first line (the status is edited: Mastodon
3.5+); notes, acknowledgements and state changes are replies in its thread, and the status's
address is the incident's URL.

Mastodon deduplicates creates itself: the `Idempotency-Key` header carries the correlation
key, and for about an hour a retried create answers the status the first one made. Statuses
carry no field to search by, so `find` is not offered (nor `status`: nobody changes an
incident's state on Mastodon). Replies carry keys of their own, so a retried note or state
change is posted once. (text limit, rate limits, fields: docs/remote-systems.md)"""

from __future__ import annotations

import email.utils
import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from incman.integrations.base import (
    ASSIGN,
    CLOSE,
    CREATE,
    FIND_NUMBER,
    NOTE,
    REOPEN,
    UPDATE,
    Integration,
    RemoteIncident,
)
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import PermanentError
from incman.integrations.http import HttpClient

VISIBILITIES = ("public", "unlisted", "private", "direct")
URL_LENGTH = 23  # what Mastodon counts for any link (characters_reserved_per_url)
_URL = re.compile(r"https?://[^\s<>\"]+")
ELLIPSIS = "…"
MAX_HOLD = 6 * 3600.0  # a Reset further away than this is not believed
# The first line of an incident's status: its state (and who acknowledged it).
LABELS = {
    "open": "🔴 OPEN",
    "assigned": "🟠 ACKNOWLEDGED",
    "closed": "✅ RESOLVED",
    "reopened": "🔁 RE-OPENED",
}


def countable_length(text: str) -> int:
    """The length Mastodon counts: each link as 23. Characters, not grapheme clusters, are
    counted, which is never less than Mastodon's count."""
    return len(_URL.sub("x" * URL_LENGTH, text))


def fit(text: str, limit: int) -> str:
    """`text` within `limit` counted characters: cut at the end with an ellipsis, never
    inside a link (a link that no longer fits is left out whole)."""
    if countable_length(text) <= limit:
        return text
    budget, used, parts, pos = limit - len(ELLIPSIS), 0, [], 0
    for match in _URL.finditer(text):
        plain = text[pos : match.start()]
        if used + len(plain) >= budget:
            break
        parts.append(plain)
        used += len(plain)
        if used + URL_LENGTH > budget:
            pos = len(text)  # the link does not fit: nothing after it either
            break
        parts.append(match.group())
        used += URL_LENGTH
        pos = match.end()
    if pos < len(text):
        parts.append(text[pos:][: max(0, budget - used)])
    return "".join(parts).rstrip() + ELLIPSIS


def label(state: str, assignee: str = "") -> str:
    return f"{LABELS[state]} by {assignee}" if state == "assigned" and assignee else LABELS[state]


def parse_label(line: str) -> tuple[str, str] | None:
    """(state, assignee) of a status's first line; None when it is no incident label."""
    for state, text in LABELS.items():
        if line == text:
            return state, ""
        if state == "assigned" and line.startswith(text + " by "):
            return state, line[len(text) + 4 :]
    return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class MastodonConfig(IntegrationConfig):
    """Statuses of the token's account; its rate limits are read from the answers."""

    url: str = url_setting(required=True, help="the server's address (https://mastodon.example)")
    access_token: str = setting(
        required=True,
        secret=True,
        help="an application's access token (scopes read:statuses, write:statuses)",
    )
    visibility: str = setting(
        "private",
        choices=VISIBILITIES,
        help="who sees the statuses: public, unlisted, private (followers) or direct",
    )
    language: str = setting("", help="ISO 639-1 language of the statuses (empty: detected)")
    max_characters: int = setting(
        500, at_least=60, help="the server's limit per status (its /api/v2/instance says)"
    )


class MastodonIntegration(Integration[MastodonConfig]):
    name = "mastodon"
    capabilities = frozenset({CREATE, UPDATE, NOTE, ASSIGN, CLOSE, REOPEN, FIND_NUMBER})
    status_map: ClassVar[dict[str, str]] = {
        "open": "OPEN",
        "reopened": "OPEN",
        "assigned": "ASSIGNED",
        "closed": "CLOSED",
    }
    idempotent_create = True
    # Its quota is read from each answer: a call waits for the one before it, so the quota
    # is known before the next one goes (with one call per worker process in flight).
    parallel_calls = 1

    def auth(self, session: HttpClient) -> None:
        session.use_header("Authorization", f"Bearer {self.cfg.access_token}")

    def request_quota(self, response: requests.Response) -> tuple[int, float] | None:
        """X-RateLimit-Remaining, and the seconds until X-RateLimit-Reset measured on the
        server's clock (its Date, in whole seconds: rounded down, at least a second, at most
        MAX_HOLD)."""
        headers = response.headers
        try:
            remaining = int(float(headers.get("X-RateLimit-Remaining", "")))
            reset = datetime.fromisoformat(headers.get("X-RateLimit-Reset", ""))
        except ValueError:
            return None
        try:
            now = email.utils.parsedate_to_datetime(headers.get("Date", ""))
        except (TypeError, ValueError):
            now = datetime.now(UTC)
        seconds = min(MAX_HOLD, max(1.0, float(math.floor((reset - now).total_seconds()))))
        return remaining, seconds

    def rate_limit_wait(self, response: requests.Response) -> float | None:
        """Until the quota renews when it is used up (or on a 429, which Mastodon sends
        without Retry-After)."""
        quota = self.request_quota(response)
        if quota is None or (quota[0] > 0 and response.status_code != 429):
            return None
        return quota[1]

    # -- transport ---------------------------------------------------------------------------
    def _call(self, method: str, path: str, key: str = "", **kwargs: Any) -> Any:
        headers = {"Idempotency-Key": key} if key else None
        data = self.http.json(method, f"{self.cfg.url}/api/v1/{path}", headers=headers, **kwargs)
        if not isinstance(data, dict):
            raise PermanentError(f"mastodon: {method} {path}: unexpected answer {data!r}")
        return data

    def _post(self, text: str, key: str, reply_to: str = "", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"status": text, "visibility": self.cfg.visibility, **extra}
        if reply_to:
            body["in_reply_to_id"] = reply_to
        if self.cfg.language:
            body["language"] = self.cfg.language
        return self._call("POST", "statuses", key=key, json=body)  # type: ignore[no-any-return]

    def _compose(self, state: str, assignee: str, body: str, spoiler: str) -> str:
        """The first status's text: the state's label, then the incident's text, within the
        limit (the content warning counts too)."""
        head = label(state, assignee)
        room = self.cfg.max_characters - countable_length(spoiler) - len(head) - 1
        return f"{head}\n{fit(body, max(1, room))}" if body else head

    def _spoiler(self, fields: dict[str, Any]) -> str:
        return fit(str(fields.get("spoiler_text") or ""), self.cfg.max_characters // 4)

    def _ref(self, status: dict[str, Any], state: str, assignee: str = "") -> RemoteIncident:
        status_id = str(status["id"])
        return RemoteIncident(
            remote_id=status_id,
            number=status_id,
            url=str(status.get("url") or status.get("uri") or ""),
            state=self.map_state(state),
            remote_state=state,
            assignee=assignee,
        )

    # -- fields ------------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        """The base fields plus `status`: "Critical: Disk full on db01" and the event's URL."""
        fields = super().default_fields(event, device, urls)
        where = (device or {}).get("title") or fields["device"]
        text = f"{fields['severityName']}: {fields['summary']}" + (f" on {where}" if where else "")
        fields["status"] = f"{text}\n{fields['eventUrl']}" if fields["eventUrl"] else text
        return fields

    # -- I/O ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        """One status, made once per correlation key by Mastodon's idempotency."""
        spoiler = self._spoiler(fields)
        body = str(fields.get("status") or fields.get("summary") or "incident")
        extra: dict[str, Any] = {}
        if spoiler:
            extra["spoiler_text"] = spoiler
        if "sensitive" in fields:
            extra["sensitive"] = bool(fields["sensitive"])
        if fields.get("language"):
            extra["language"] = str(fields["language"])
        text = self._compose("open", "", body, spoiler)
        return self._ref(self._post(text, correlation_key, **extra), "open")

    def _source(self, status_id: str) -> tuple[tuple[str, str] | None, str, dict[str, Any]]:
        """(state and assignee, the text after the label, the source) of an incident status."""
        source = self._call("GET", f"statuses/{status_id}/source")
        first, _, rest = str(source.get("text") or "").partition("\n")
        return parse_label(first), rest, source

    def find_by_number(self, number: str) -> RemoteIncident | None:
        """The incident status with this id, or at this address (`.../@incman/1234`); None
        for a status that is not this account's or not an incident."""
        status_id = number.strip().rstrip("/").rsplit("/", 1)[-1]
        if not status_id.isdigit():
            return None
        try:
            state, _, _ = self._source(status_id)
        except PermanentError as exc:
            if exc.status in (403, 404):  # another account's status, or none
                return None
            raise
        if state is None:
            return None
        return self._ref(self._call("GET", f"statuses/{status_id}"), *state)

    def _reply(self, ref: RemoteIncident, text: str, key: str) -> None:
        self._post(
            fit(text, self.cfg.max_characters), f"incman:{ref.remote_id}:{key}", ref.remote_id
        )

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._reply(ref, text, f"note:{_digest(text)}")

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        text = str(fields.get("status") or fields.get("summary") or "")
        if text:
            self._reply(ref, f"ℹ️ {text}", f"update:{_digest(text)}")

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        who = assignee or "incman"
        self._change_state(ref, "assigned", who, f"🟠 Acknowledged by {who}")

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._change_state(ref, "closed", "", f"✅ {note or 'Resolved'}")

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._change_state(ref, "reopened", "", f"🔁 {note or 'Re-opened'}")

    def _change_state(self, ref: RemoteIncident, state: str, assignee: str, reply: str) -> None:
        """Show `state` on the first status, then say why in the thread, once.

        The reply's idempotency key names the edit it belongs to (`edited_at`), so a retry
        after the edit (the state already shown) posts the reply only if it is missing, and
        a later change to the same state gets a reply of its own."""
        current, body, source = self._source(ref.remote_id)
        if current is None:
            raise PermanentError(
                f"mastodon: status {ref.remote_id} shows no incident state on its first line"
            )
        if current != (state, assignee):
            spoiler = str(source.get("spoiler_text") or "")
            status = self._call(
                "PUT",
                f"statuses/{ref.remote_id}",
                json={
                    # an edit replaces every field: the content warning is sent again
                    "status": self._compose(state, assignee, body, spoiler),
                    "spoiler_text": spoiler,
                    "sensitive": bool(spoiler),
                },
            )
        else:
            status = self._call("GET", f"statuses/{ref.remote_id}")
        self._reply(ref, reply, f"{state}:{assignee}:{status.get('edited_at') or ''}")
