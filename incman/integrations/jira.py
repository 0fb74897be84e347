"""Jira: issues through REST v3 on Cloud or v2 on Server/Data Center.

Cloud takes ADF bodies and `/search/jql`, Server/Data Center plain text and `/search`; an issue
is found again by a correlation label `incman-<key>`.

Close and re-open pick a transition by the target status category (`done`; `new`, then
`indeterminate`), or by the name in `resolve_status`/`reopen_status`: transition ids differ
per workflow. A status category maps to OPEN (ASSIGNED with an assignee) or CLOSED.

Cloud's `/search/jql` is eventually consistent: the worker stores the issue as soon as the
201 arrives, so only a create whose answer was lost AND whose retry comes within the search
lag (usually well under the retry backoff) could be missed by `find`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import CannotReopen, PermanentError
from incman.integrations.http import HttpClient

STATUS_CHUNK = 50
SUMMARY_MAX = 255
READ_FIELDS = "status,assignee,labels"
URL_IN_TEXT = re.compile(r"https?://[^\s<>\"']+")
ACCOUNT_ID = re.compile(r"^([0-9a-f]{24}|[0-9a-z]+:[0-9a-f-]{36})$")
ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: one paragraph per line, URLs as links."""
    paragraphs = []
    for line in text.split("\n"):
        content: list[dict[str, Any]] = []
        pos = 0
        for found in URL_IN_TEXT.finditer(line):
            if found.start() > pos:
                content.append({"type": "text", "text": line[pos : found.start()]})
            url = found.group(0)
            content.append(
                {"type": "text", "text": url, "marks": [{"type": "link", "attrs": {"href": url}}]}
            )
            pos = found.end()
        if pos < len(line):
            content.append({"type": "text", "text": line[pos:]})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def _labels(value: Any) -> list[str]:
    """Labels from a list or from text ("a, b c"); a label never contains spaces."""
    items = value if isinstance(value, list) else re.split(r"[,\s]+", _text(value))
    return [re.sub(r"\s+", "_", _text(i).strip()) for i in items if _text(i).strip()]


def _label_prefix(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_-]*", value) else "letters, digits, _ and - only"


class JiraConfig(IntegrationConfig):
    url: str = url_setting(required=True, help="the site's address")
    project: str = setting(required=True, help="key of the project new issues go to")
    flavor: str = setting("cloud", choices=("cloud", "server"), help="Cloud or Server/DC")
    username: str = setting("", help="the account (its email on Cloud)")
    api_token: str = setting("", secret=True, help="API token (Cloud) or personal access token")
    password: str = setting("", secret=True, help="password (Server/DC, instead of a token)")
    issue_type: str = setting("Task", help="type of new issues")
    resolve_status: str = setting("", help="status a close moves to (default: any done)")
    reopen_status: str = setting("", help="status a re-open moves to (default: any open)")
    resolution: str = setting("", help="resolution sent with the close transition")
    label_prefix: str = setting("incman-", check=_label_prefix, help="of the correlation label")
    user_map: dict[str, str] = setting({}, help="incman user → Jira account id or name")

    def check(self) -> Iterator[tuple[str, str]]:
        if self.flavor == "cloud" and not (self.username and self.api_token):
            yield "api_token", "Cloud needs username (the account's email) and api_token"
        if self.flavor == "server" and not (self.api_token or (self.username and self.password)):
            yield (
                "api_token",
                "Server needs api_token (a personal access token) or username and password",
            )


class JiraIntegration(Integration[JiraConfig]):
    name = "jira"
    capabilities = ALL_CAPABILITIES
    # status category → state (an assignee makes an open issue ASSIGNED)
    status_map: ClassVar[dict[str, str]] = {
        "new": "OPEN",
        "indeterminate": "OPEN",
        "done": "CLOSED",
    }

    def __init__(self, config: Any, notification_id: str = "", **given: Any) -> None:
        super().__init__(config, notification_id, **given)
        self.cloud = self.cfg.flavor == "cloud"
        self.api = f"{self.cfg.url}/rest/api/{3 if self.cloud else 2}"

    def auth(self, session: HttpClient) -> None:
        session.use_header("Accept", "application/json")
        cfg = self.cfg
        if cfg.username and (cfg.api_token or cfg.password):
            session.use_basic(cfg.username, cfg.api_token or cfg.password)
        else:  # a Server/Data Center personal access token
            session.use_header("Authorization", f"Bearer {cfg.api_token}")

    # -- mapping ---------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        return {
            "summary": _text(event.get("summary")).split("\n")[0][:SUMMARY_MAX],
            "description": MappingUtils(urls).getDescription(event),
        }

    def _body_text(self, text: str) -> Any:
        return adf(text) if self.cloud else text

    def _user(self, who: str) -> dict[str, str]:
        """The assignee as this Jira wants it: accountId on Cloud, name on Server."""
        target = self.cfg.user_map.get(who, who)
        if not target:
            raise PermanentError("jira: no assignee given")
        if not self.cloud:
            return {"name": target}
        if ACCOUNT_ID.match(target):
            return {"accountId": target}
        found = self.http.json("GET", f"{self.api}/user/search", params={"query": target})
        wanted = target.lower()
        exact = [
            u
            for u in (found or [])
            if isinstance(u, dict)
            and wanted
            in (
                _text(u.get("emailAddress")).lower(),
                _text(u.get("displayName")).lower(),
                _text(u.get("name")).lower(),
            )
        ]
        if len(exact) != 1:
            raise PermanentError(
                f"jira: {len(exact) or 'no'} users match {target!r} "
                "(map incman users to account ids with user_map)"
            )
        return {"accountId": _text(exact[0].get("accountId"))}

    def _fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """incman's flat fields as Jira's `fields` object."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "summary":
                out[name] = _text(value).split("\n")[0][:SUMMARY_MAX]
            elif name in ("description", "environment") and isinstance(value, str):
                out[name] = self._body_text(value)
            elif name == "labels":
                out[name] = _labels(value)
            elif name == "priority" and isinstance(value, str):
                out[name] = {"name": value}
            elif name == "components" and isinstance(value, str):
                out[name] = [{"name": c.strip()} for c in value.split(",") if c.strip()]
            elif name == "project" and isinstance(value, str):
                out[name] = {"key": value}
            elif name == "issuetype" and isinstance(value, str):
                out[name] = {"name": value}
            elif name == "assignee" and isinstance(value, str):
                out[name] = self._user(value) if value else None
            else:
                out[name] = value
        return out

    def _ref(self, issue: dict[str, Any]) -> RemoteIncident:
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        category = _text((status.get("statusCategory") or {}).get("key"))
        assignee = fields.get("assignee") or {}
        who = _text(
            assignee.get("displayName") or assignee.get("name") or assignee.get("accountId")
        )
        state = self.map_state(category)
        key = _text(issue.get("key"))
        return RemoteIncident(
            remote_id=_text(issue.get("id")),
            number=key,
            url=f"{self.cfg.url}/browse/{key}",
            state="ASSIGNED" if state == "OPEN" and who else state,
            remote_state=_text(status.get("name")),
            assignee=who,
        )

    # -- requests ----------------------------------------------------------------------------
    def _search(self, jql: str, limit: int) -> list[dict[str, Any]]:
        """One page of a JQL search (callers keep pages within `limit`)."""
        path = "search/jql" if self.cloud else "search"
        params = {"jql": jql, "fields": READ_FIELDS, "maxResults": str(limit)}
        answer = self.http.json("GET", f"{self.api}/{path}", params=params)
        issues = answer.get("issues") if isinstance(answer, dict) else None
        return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []

    def _issue(self, remote_id: str) -> dict[str, Any] | None:
        try:
            answer = self.http.json(
                "GET", f"{self.api}/issue/{remote_id}", params={"fields": READ_FIELDS}
            )
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        return answer if isinstance(answer, dict) else None

    def _transition(self, ref: RemoteIncident, to_done: bool) -> None:
        issue = self._issue(ref.remote_id)
        if issue is None:
            raise PermanentError(f"jira: {ref.number} does not exist any more")
        wanted = self.cfg.resolve_status if to_done else self.cfg.reopen_status
        status = (issue.get("fields") or {}).get("status") or {}
        category = _text((status.get("statusCategory") or {}).get("key"))
        if not to_done and category != "done":
            return  # open already: a retried re-open
        if (
            to_done
            and category == "done"
            and (not wanted or _text(status.get("name")).lower() == wanted.lower())
        ):
            return  # closed already: a retried close
        answer = self.http.json("GET", f"{self.api}/issue/{ref.remote_id}/transitions")
        transitions = [t for t in (answer or {}).get("transitions", []) if isinstance(t, dict)]
        chosen = choose_transition(transitions, to_done, wanted)
        if chosen is None:
            names = (
                ", ".join(
                    f"{t.get('name')} → {(t.get('to') or {}).get('name')}" for t in transitions
                )
                or "none"
            )
            goal = wanted or ("a done status" if to_done else "an open status")
            raise (PermanentError if to_done else CannotReopen)(
                f"jira: no transition of {ref.number} leads to {goal} (available: {names})"
            )
        body: dict[str, Any] = {"transition": {"id": _text(chosen.get("id"))}}
        if to_done and self.cfg.resolution:
            body["fields"] = {"resolution": {"name": self.cfg.resolution}}
        self.http.request("POST", f"{self.api}/issue/{ref.remote_id}/transitions", json=body)

    # -- the contract --------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        body = self._fields(fields)
        body.setdefault("project", {"key": self.cfg.project})
        body.setdefault("issuetype", {"name": self.cfg.issue_type})
        label = f"{self.cfg.label_prefix}{correlation_key}"
        body["labels"] = [*(x for x in body.get("labels", []) if x != label), label]
        answer = self.http.json("POST", f"{self.api}/issue", json={"fields": body})
        if not isinstance(answer, dict) or not answer.get("key"):
            raise PermanentError("jira: the create answer has no issue key")
        return self._ref(
            {
                "id": answer.get("id"),
                "key": answer["key"],
                "fields": {"status": {"statusCategory": {"key": "new"}}},
            }
        )

    def find(self, correlation_key: str) -> RemoteIncident | None:
        label = f"{self.cfg.label_prefix}{correlation_key}"
        for issue in self._search(f'labels = "{label}" ORDER BY created ASC', 10):
            if label in ((issue.get("fields") or {}).get("labels") or []):
                return self._ref(issue)
        return None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        key = number.strip().upper()
        issue = self._issue(key) if ISSUE_KEY.match(key) else None
        return self._ref(issue) if issue is not None else None

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        body = {k: v for k, v in self._fields(fields).items() if k not in ("project", "issuetype")}
        if body:
            self.http.request("PUT", f"{self.api}/issue/{ref.remote_id}", json={"fields": body})

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self.http.request(
            "POST",
            f"{self.api}/issue/{ref.remote_id}/comment",
            json={"body": self._body_text(text)},
        )

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        self.http.request(
            "PUT", f"{self.api}/issue/{ref.remote_id}/assignee", json=self._user(assignee)
        )

    def close(self, ref: RemoteIncident, note: str) -> None:
        if note:
            self.add_note(ref, note)
        self._transition(ref, to_done=True)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._transition(ref, to_done=False)
        if note:
            self.add_note(ref, note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        wanted = {r.remote_id: r.number or r.remote_id for r in refs if r.remote_id}
        ids = list(wanted)
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), STATUS_CHUNK):
            chunk = ids[start : start + STATUS_CHUNK]
            keys = ", ".join(f'"{wanted[i]}"' for i in chunk)
            try:
                issues = self._search(f"key in ({keys})", len(chunk))
            except PermanentError as exc:
                # a key that no longer exists fails the whole JQL (400): read one by one
                if exc.status != 400:
                    raise
                issues = [i for i in (self._issue(rid) for rid in chunk) if i is not None]
            for issue in issues:
                ref = self._ref(issue)
                if ref.remote_id in wanted:
                    out[ref.remote_id] = ref
        return out


def choose_transition(
    transitions: list[dict[str, Any]], to_done: bool, wanted: str = ""
) -> dict[str, Any] | None:
    """The transition to take: by name (of the transition or its target status) when one is
    wanted, else the first into `done` (close) or into `new`, then `indeterminate` (re-open)."""
    if wanted:
        low = wanted.lower()
        return next(
            (
                t
                for t in transitions
                if low
                in (_text(t.get("name")).lower(), _text((t.get("to") or {}).get("name")).lower())
            ),
            None,
        )
    categories = ("done",) if to_done else ("new", "indeterminate")
    for category in categories:
        for t in transitions:
            key = ((t.get("to") or {}).get("statusCategory") or {}).get("key")
            if key == category:
                return t
    return None
