"""Redmine over its REST API: issues in a project, found again by an issue custom field.

Fields are Redmine's issue attributes (`subject`, `description`, `priority_id`,
`tracker_id`, `category_id`, `assigned_to_id`, `start_date`, `due_date`, `is_private`, ...),
`priority` and `tracker` by name, and `cf_<id>` for a custom field. Redmine is quiet about
what it does not apply: a status the workflow does not allow is ignored (204), a custom field
the project or tracker lacks is dropped, and an unusable `cf_` filter is ignored (every issue
comes back). So the allowed statuses are read before a change, a create checks that the key
was kept, and `find` checks that every answer carries the key."""

from __future__ import annotations

from typing import Any, ClassVar

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import CannotReopen, IntegrationError, PermanentError
from incman.integrations.http import HttpClient

_ATTRIBUTES = (
    "subject description tracker_id status_id priority_id category_id fixed_version_id "
    "assigned_to_id parent_issue_id watcher_user_ids is_private estimated_hours start_date "
    "due_date done_ratio custom_fields"
)
ISSUE_FIELDS = frozenset(_ATTRIBUTES.split())
SUBJECT_MAX = 255
BATCH = 100  # Redmine's largest page
# event severity → priority name of Redmine's default data (Low, Normal, High, Urgent, Immediate)
DEFAULT_PRIORITIES = {"5": "Urgent", "4": "High", "3": "Normal", "2": "Low", "1": "Low", "0": "Low"}


def _check_priorities(value: Any) -> str | None:
    wrong = sorted(set(value) - set(DEFAULT_PRIORITIES))
    return f"keys are event severities 0-5, not {', '.join(wrong)}" if wrong else None


class RedmineConfig(IntegrationConfig):
    """The API key's user adds, edits and notes issues in the project (a member's key will
    do: give the correlation field by id then); the workflow decides which statuses it sets."""

    url: str = url_setting(required=True, help="Redmine's address")
    api_key: str = setting(required=True, secret=True, help="a user's API key (X-Redmine-API-Key)")
    project: str = setting(required=True, help="project of new issues: identifier or id")
    tracker: str = setting("", help="tracker of new issues, name or id (empty: the project's)")
    correlation_field: str = setting(
        "IncidentID",
        required=True,
        help="issue custom field of the correlation key, 'used as a filter': its id, or its "
        "name (looked up in /custom_fields.json, which needs an administrator's key)",
    )
    close_status: str = setting("Resolved", help="status a close sets (name or id)")
    reopen_status: str = setting("In Progress", help="status a re-open sets (name or id)")
    private_notes: bool = setting(False, help="notes only members allowed to see them see")
    priority_map: dict[str, str] = setting(
        DEFAULT_PRIORITIES, check=_check_priorities, help="event severity → priority name or id"
    )
    user_map: dict[str, str] = setting({}, help="incman user → Redmine login or user id")


class RedmineIntegration(Integration[RedmineConfig]):
    name = "redmine"
    capabilities = ALL_CAPABILITIES
    # Redmine's default statuses (an open one with an assignee is ASSIGNED)
    status_map: ClassVar[dict[str, str]] = {
        "New": "OPEN",
        "In Progress": "OPEN",
        "Feedback": "OPEN",
        "Resolved": "RESOLVED",
        "Closed": "CLOSED",
        "Rejected": "CLOSED",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._field: int | None = None
        self._statuses: dict[int, tuple[str, bool]] | None = None  # id → (name, is_closed)
        self._named: dict[tuple[str, str], int] = {}  # (kind, name) → id, looked up once
        self._current: dict[str, Any] | None = None  # the API user

    def auth(self, session: HttpClient) -> None:
        session.use_header("X-Redmine-API-Key", self.cfg.api_key)

    # -- transport and look-ups ------------------------------------------------------------
    def _rest(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.json(method, f"{self.cfg.url}/{path}", **kwargs)

    def _issue(self, issue_id: str, include: str = "") -> dict[str, Any]:
        params = {"include": include} if include else None
        data = self._rest("GET", f"issues/{issue_id}.json", params=params)
        if not isinstance(data, dict) or not isinstance(data.get("issue"), dict):
            raise PermanentError(f"redmine: issue {issue_id}: unexpected answer {data!r}")
        return data["issue"]  # type: ignore[no-any-return]

    def _search(self, params: dict[str, Any]) -> Any:
        """Issues of the project in any status. Scoped to the project: Redmine answers a
        search with a wrong key as an anonymous one (empty), and a private project's as 401."""
        try:
            return self._rest(
                "GET",
                "issues.json",
                params={"project_id": self.cfg.project, "status_id": "*", **params},
            )
        except PermanentError as exc:
            if exc.status != 404:
                raise
            raise PermanentError(
                f"redmine: no project {self.cfg.project!r} (or the API user is no member)",
                status=404,
            ) from exc

    def _put(self, issue_id: str, body: dict[str, Any]) -> None:
        self._rest("PUT", f"issues/{issue_id}.json", json={"issue": body})  # 204, no body

    def field_id(self) -> int:
        """The correlation custom field's id (a name is looked up once)."""
        if self._field is None:
            wanted = self.cfg.correlation_field.strip()
            self._field = int(wanted) if wanted.isdigit() else self._lookup_field(wanted)
        return self._field

    def _lookup_field(self, name: str) -> int:
        try:
            data = self._rest("GET", "custom_fields.json")
        except PermanentError as exc:
            if exc.status != 403:
                raise
            raise PermanentError(
                f"redmine: only an administrator may list custom fields: set "
                f"correlation_field to the id of {name!r} (Administration → Custom fields)",
                status=403,
            ) from exc
        for field in (data or {}).get("custom_fields") or []:
            if field.get("customized_type") == "issue" and field.get("name") == name:
                return int(field["id"])
        raise PermanentError(f"redmine: no issue custom field named {name!r}")

    def statuses(self) -> dict[int, tuple[str, bool]]:
        if self._statuses is None:
            data = self._rest("GET", "issue_statuses.json")
            self._statuses = {
                int(s["id"]): (str(s["name"]), bool(s.get("is_closed")))
                for s in (data or {}).get("issue_statuses") or []
            }
        return self._statuses

    def _status_id(self, wanted: str) -> int:
        statuses = self.statuses()
        for status_id, (name, _) in statuses.items():
            if wanted == str(status_id) or wanted.casefold() == name.casefold():
                return status_id
        known = ", ".join(name for name, _ in statuses.values())
        raise PermanentError(f"redmine: no issue status {wanted!r} (statuses: {known})")

    def _named_id(self, kind: str, wanted: str) -> int:
        """The id of a priority or tracker given by name or id."""
        wanted = str(wanted).strip()
        if wanted.isdigit():
            return int(wanted)
        if (kind, wanted.casefold()) not in self._named:
            path, key = {
                "priority": ("enumerations/issue_priorities.json", "issue_priorities"),
                "tracker": ("trackers.json", "trackers"),
            }[kind]
            items = (self._rest("GET", path) or {}).get(key) or []
            for item in items:
                self._named[(kind, str(item["name"]).casefold())] = int(item["id"])
            if (kind, wanted.casefold()) not in self._named:
                known = ", ".join(str(i["name"]) for i in items)
                raise PermanentError(f"redmine: no {kind} {wanted!r} (known: {known})")
        return self._named[(kind, wanted.casefold())]

    def _ref(self, issue: dict[str, Any]) -> RemoteIncident:
        issue_id = str(issue["id"])
        status = issue.get("status") or {}
        name = str(status.get("name") or "")
        # a status of another name is CLOSED when Redmine says so, else OPEN
        closed = status.get("is_closed") and name not in self.status_map
        state = "CLOSED" if closed else self.map_state(name)
        assignee = str((issue.get("assigned_to") or {}).get("name") or "")
        if state == "OPEN" and assignee:
            state = "ASSIGNED"
        return RemoteIncident(
            remote_id=issue_id,
            number=issue_id,
            url=f"{self.cfg.url}/issues/{issue_id}",
            state=state,
            remote_state=name,
            assignee=assignee,
        )

    # -- fields ------------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "subject": str(event.get("summary") or "")[:SUBJECT_MAX],
            "description": MappingUtils(urls).getDescription(event),
        }
        priority = self.cfg.priority_map.get(str(event.get("severity", 3)))
        if priority:
            fields["priority"] = priority
        return fields

    def issue_body(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The `issue` object for `fields`: Redmine attributes, `priority`/`tracker` by name,
        `cf_<id>` as custom_fields; other keys are not sent."""
        body: dict[str, Any] = {k: v for k, v in fields.items() if k in ISSUE_FIELDS}
        for kind in ("priority", "tracker"):
            if fields.get(kind) not in (None, "") and f"{kind}_id" not in body:
                body[f"{kind}_id"] = self._named_id(kind, str(fields[kind]))
        custom = [
            {"id": int(k[3:]), "value": v}
            for k, v in fields.items()
            if k.startswith("cf_") and k[3:].isdigit()
        ]
        if custom:
            body["custom_fields"] = [*(body.get("custom_fields") or []), *custom]
        if "subject" in body:
            body["subject"] = str(body["subject"] or "")[:SUBJECT_MAX]
        return body

    # -- I/O ---------------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        body = self.issue_body(fields)
        body["project_id"] = self.cfg.project
        if self.cfg.tracker and "tracker_id" not in body:
            body["tracker_id"] = self._named_id("tracker", self.cfg.tracker)
        if not str(body.get("subject") or "").strip():
            body["subject"] = "incman incident"  # Redmine refuses a blank subject (422)
        field = self.field_id()
        body["custom_fields"] = [
            *(c for c in body.get("custom_fields") or [] if c.get("id") != field),
            {"id": field, "value": correlation_key},
        ]
        created = self._rest("POST", "issues.json", json={"issue": body})
        issue = (created or {}).get("issue") if isinstance(created, dict) else None
        if not isinstance(issue, dict) or not issue.get("id"):
            raise PermanentError(f"redmine: unexpected answer to an issue create: {created!r}")
        if _key_of(issue, field) != correlation_key:
            self._discard(str(issue["id"]))
            raise PermanentError(
                f"redmine: issue {issue['id']} did not keep the correlation key: custom field "
                f"{field} must be enabled for project {self.cfg.project!r} and the issue's "
                "tracker (the issue was discarded)"
            )
        return self._ref(issue)

    def _discard(self, issue_id: str) -> None:
        """An issue that cannot be found again would be made anew on every retry: delete
        it, or (without the permission) close it with a note."""
        try:
            self._rest("DELETE", f"issues/{issue_id}.json")
            return
        except IntegrationError:
            pass
        note = "Discarded by incman: the correlation custom field is missing."
        try:
            self._put(
                issue_id, {"status_id": self._status_id(self.cfg.close_status), "notes": note}
            )
        except IntegrationError:
            pass  # the create error says what to fix; this is only tidying

    def find(self, correlation_key: str) -> RemoteIncident | None:
        field = self.field_id()
        data = self._search({f"cf_{field}": correlation_key, "sort": "id", "limit": 25})
        issues = [i for i in (data or {}).get("issues") or [] if isinstance(i, dict)]
        # Redmine ignores a cf_ filter it cannot use and answers every issue: check the key.
        if any(_key_of(i, field).casefold() != correlation_key.casefold() for i in issues):
            raise PermanentError(
                f"redmine: custom field {field} cannot be searched: it must be 'used as a "
                "filter' and visible to the API user"
            )
        exact = [i for i in issues if _key_of(i, field) == correlation_key]
        return self._ref(exact[0]) if exact else None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        """The issue with this id (`#123` or `123`), when the API user may see it."""
        issue_id = number.strip().lstrip("#")
        if not issue_id.isdigit():
            return None
        try:
            return self._ref(self._issue(issue_id))
        except PermanentError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        body = self.issue_body(fields)
        if body:
            self._put(ref.remote_id, body)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        self._put(ref.remote_id, {"notes": text, "private_notes": self.cfg.private_notes})

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """Assign to the Redmine user of that login (user_map first); when Redmine has none,
        to the API user, with a note saying who acknowledged."""
        who = self.cfg.user_map.get(assignee, assignee)
        user_id = self._user_id(who) if who else None
        if user_id is not None:
            self._put(ref.remote_id, {"assigned_to_id": user_id})
            return
        note = {
            "notes": f"Acknowledged in incman by {assignee} (no Redmine user of that name)",
            "private_notes": self.cfg.private_notes,
        }
        try:
            self._put(ref.remote_id, {"assigned_to_id": self._me().get("id"), **note})
        except PermanentError as exc:
            if exc.status != 422:  # "Assignee is invalid": the API user may not take it
                raise
            self._put(ref.remote_id, note)

    def _me(self) -> dict[str, Any]:
        if self._current is None:
            self._current = (self._rest("GET", "users/current.json") or {}).get("user") or {}
        return self._current

    def _user_id(self, who: str) -> int | None:
        """A user id by id, by login (the API user's own, or any when an administrator may
        list users) or by name among the project's members (what other users may see)."""
        if who.isdigit():
            return int(who)
        if str(self._me().get("login", "")).casefold() == who.casefold():
            return int(self._me()["id"])
        try:
            users = (self._rest("GET", "users.json", params={"name": who}) or {}).get("users")
            for user in users or []:
                if str(user.get("login", "")).casefold() == who.casefold():
                    return int(user["id"])
        except PermanentError as exc:
            if exc.status != 403:
                raise
        path = f"projects/{self.cfg.project}/memberships.json"
        members = (self._rest("GET", path, params={"limit": BATCH}) or {}).get("memberships")
        for member in members or []:
            user = member.get("user") or {}
            if str(user.get("name", "")).casefold() == who.casefold():
                return int(user["id"])
        return None

    def _set_status(self, ref: RemoteIncident, wanted: str, note: str, reopen: bool) -> None:
        """Set a status with a note, in one change; nothing when the issue has it already (a
        repeated close adds no second note). Redmine ignores a status its workflow does not
        allow this user, so that is checked first."""
        target = self._status_id(wanted)
        issue = self._issue(ref.remote_id, include="allowed_statuses")
        current = issue.get("status") or {}
        if current.get("id") == target:
            return
        allowed = {int(s["id"]) for s in issue.get("allowed_statuses") or []}
        if target not in allowed:
            name = current.get("name", "?")
            if reopen and current.get("is_closed"):
                raise CannotReopen(
                    f"redmine: issue {ref.remote_id} is {name}: the workflow allows this "
                    f"user no way back to {wanted}"
                )
            raise PermanentError(
                f"redmine: issue {ref.remote_id}: the workflow does not allow this user to go "
                f"from {name} to {wanted}"
            )
        self._put(
            ref.remote_id,
            {"status_id": target, "notes": note, "private_notes": self.cfg.private_notes},
        )

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._set_status(ref, self.cfg.close_status, note or "Closed by incman", reopen=False)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._set_status(ref, self.cfg.reopen_status, note or "Re-opened by incman", reopen=True)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """`issue_id=1,2,...` in the project, 100 at a time; an issue the search leaves out
        (moved to another project) is read on its own, and left out if it is gone."""
        ids = list(dict.fromkeys(r.remote_id for r in refs if r.remote_id.isdigit()))
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            data = self._search({"issue_id": ",".join(chunk), "limit": BATCH})
            for issue in (data or {}).get("issues") or []:
                if str(issue.get("id")) in chunk:
                    out[str(issue["id"])] = self._ref(issue)
        for issue_id in (i for i in ids if i not in out):
            found = self.find_by_number(issue_id)
            if found is not None:
                out[issue_id] = found
        return out


def _key_of(issue: dict[str, Any], field: int) -> str:
    for custom in issue.get("custom_fields") or []:
        if custom.get("id") == field:
            return str(custom.get("value") or "")
    return ""
