"""A Jira simulator: REST v3 (Cloud) or v2 (Server/DC), on a real HTTP server.

Cloud with ADF bodies and `/search/jql`, Server/DC with plain text and `/search`, as the
reference describes them (remote-apis.md).

What it keeps like the real Jira: project keys and numbers (PROJ-1…), numeric ids, a workflow
whose transitions are chosen by target status category (ids differ per workflow), the
resolution set on done and cleared on leaving it, comments, labels without spaces, the error
shape `{"errorMessages", "errors"}`, fields not on the screen refused, `/search` answering 410
on Cloud, a JQL subset (`labels`, `key`/`id`, `project`, `status`, `statusCategory`, AND,
ORDER BY) where a missing issue key is a 400, and optionally the search lag of Cloud
(`search_lag` seconds before a new issue is found)."""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import Any

from incman.testing.simbase import (
    SimApp,
    SimError,
    SimRequest,
    SimResponse,
    Ticket,
    basic_credentials,
    bearer_token,
)

API_PATH = re.compile(r"^/rest/api/(?P<version>2|3|latest)/(?P<rest>.+?)/?$")
ISSUE_PATH = re.compile(r"^issue/(?P<id>[^/]+)(?:/(?P<sub>comment|assignee|transitions))?$")
CLAUSE = re.compile(
    r"^\s*(?P<field>[A-Za-z]+)\s*(?P<op>!=|=|not\s+in|in)\s*"
    r"(?P<value>\(.*\)|\"[^\"]*\"|'[^']*'|\S+)\s*$",
    re.I,
)
CATEGORIES = {
    "new": ("2", "To Do", "blue-gray"),
    "indeterminate": ("4", "In Progress", "yellow"),
    "done": ("3", "Done", "green"),
}
WORKFLOWS: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {
    # statuses (id, name, category), transitions (id, name, target status)
    "simple": (
        [
            ("10000", "To Do", "new"),
            ("3", "In Progress", "indeterminate"),
            ("10001", "Done", "done"),
        ],
        [
            ("11", "Back to To Do", "To Do"),
            ("21", "Start Progress", "In Progress"),
            ("31", "Done", "Done"),
        ],
    ),
    "itsm": (
        [
            ("1", "Open", "new"),
            ("3", "Work in progress", "indeterminate"),
            ("5", "Resolved", "done"),
            ("6", "Closed", "done"),
        ],
        [
            ("711", "Reopen", "Open"),
            ("721", "Start work", "Work in progress"),
            ("731", "Resolve", "Resolved"),
            ("741", "Close", "Closed"),
        ],
    ),
}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
RESOLUTIONS = ("Done", "Won't Do", "Duplicate", "Fixed")
SETTABLE = frozenset(
    {
        "project",
        "issuetype",
        "summary",
        "description",
        "labels",
        "priority",
        "assignee",
        "duedate",
        "environment",
    }
)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())


def _failure(
    status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None
) -> SimError:
    return SimError(status, {"errorMessages": messages or [], "errors": errors or {}})


def adf_text(doc: Any) -> str:
    """The plain text of an ADF document (paragraphs on their own lines)."""
    if isinstance(doc, dict):
        if doc.get("type") == "text":
            return str(doc.get("text", ""))
        if doc.get("type") == "hardBreak":
            return "\n"
        inner = "".join(adf_text(child) for child in doc.get("content", []))
        return inner + ("\n" if doc.get("type") == "paragraph" else "")
    return ""


def _is_adf(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("type") == "doc"
        and value.get("version") == 1
        and isinstance(value.get("content"), list)
        and all(isinstance(n, dict) and "type" in n for n in value["content"])
    )


def _to_adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
            for line in text.split("\n")
        ],
    }


class JiraSim(SimApp):
    """Options: `flavor` (`cloud` | `server`), `username` + `api_token` (Basic; on Server the
    token is also a Bearer PAT), `project` keys, `issue_types`, `workflow` (`simple` |
    `itsm`), `users`, `search_lag` seconds."""

    name = "jira"

    def __init__(
        self,
        flavor: str = "cloud",
        username: str = "incman@example.com",
        api_token: str = "jira-api-token",
        project: str = "PROJ",
        issue_types: str = "Task,Bug,Incident",
        workflow: str = "simple",
        users: list[str] | str | None = None,
        search_lag: float | str = 0,
    ) -> None:
        super().__init__()
        if flavor not in ("cloud", "server"):
            raise ValueError("flavor must be cloud or server")
        if workflow not in WORKFLOWS:
            raise ValueError(f"workflow must be one of {', '.join(WORKFLOWS)}")
        self.flavor, self.username, self.api_token = flavor, username, api_token
        self.projects = [p.strip() for p in project.split(",") if p.strip()]
        self.issue_types = {
            str(10001 + n): t.strip() for n, t in enumerate(issue_types.split(",")) if t.strip()
        }
        self.statuses = {sid: (name, cat) for sid, name, cat in WORKFLOWS[workflow][0]}
        self.transitions = WORKFLOWS[workflow][1]
        self.search_lag = float(search_lag)
        names = users if users is not None else ["oncall1", "oncall2", "tester"]
        self.user_names = names.split(",") if isinstance(names, str) else list(names)
        self.reset()

    def reset(self) -> None:
        self.issues: dict[str, dict[str, Any]] = {}
        self.counters = dict.fromkeys(self.projects, 0)
        self.next_id = 10001
        self.users = [self._user(n) for n in [self.username.split("@")[0], *self.user_names]]

    @staticmethod
    def _user(name: str) -> dict[str, str]:
        return {
            "accountId": f"5b10ac8d82e05b22cc7d{secrets.token_hex(2)}",
            "name": name,
            "displayName": name.replace(".", " ").title(),
            "emailAddress": f"{name}@example.com",
        }

    # -- auth and errors -------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        if basic_credentials(req.headers) == (self.username, self.api_token):
            return True
        token = bearer_token(req.headers)
        return (
            self.flavor == "server"
            and token is not None
            and secrets.compare_digest(token, self.api_token)
        )

    def error(self, status: int, message: str) -> SimResponse:
        if status == 401:
            message = "Client must be authenticated to access this resource."
        resp = _failure(status, [message]).response
        if status == 429:
            resp.headers.update(
                {
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": _now(),
                    "RateLimit-Reason": "jira-burst-based",
                }
            )
        return resp

    def describe(self) -> str:
        return (
            f"Jira ({self.flavor}) simulator at {self.base_url}\n"
            f"  user: {self.username}, api_token: {self.api_token}\n"
            f"  projects: {', '.join(self.projects)}; issue types: "
            f"{', '.join(self.issue_types.values())}\n"
            f"  notification config: {{url: {self.base_url}, flavor: {self.flavor}, "
            f"username: {self.username}, api_token: ..., project: {self.projects[0]}}}"
        )

    # -- routing -----------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        match = API_PATH.match(req.path)
        if not match:
            raise _failure(404, ["null for uri: " + req.path])
        version = "2" if match["version"] == "latest" else match["version"]
        if version == "3" and self.flavor == "server":
            raise _failure(404, ["null for uri: " + req.path])
        rest = match["rest"]
        if rest == "issue" and req.method == "POST":
            return self._create(req, version)
        found = ISSUE_PATH.match(rest)
        if found:
            issue = self._issue(found["id"])
            sub = found["sub"]
            if sub is None:
                return self._issue_call(req, version, issue)
            if sub == "comment":
                return self._comment(req, version, issue)
            if sub == "assignee" and req.method == "PUT":
                return self._assign(req, issue)
            if sub == "transitions":
                return self._transitions(req, issue)
        if rest in ("search", "search/jql") and req.method in ("GET", "POST"):
            return self._search(req, version, rest)
        if rest == "user/search" and req.method == "GET":
            query = (req.query.get("query") or req.query.get("username") or "").lower()
            return SimResponse(
                200,
                [
                    self._render_user(u)
                    for u in self.users
                    if query
                    and any(query in u[k].lower() for k in ("name", "displayName", "emailAddress"))
                ],
            )
        if rest == "myself":
            return SimResponse(200, self._render_user(self.users[0]))
        raise _failure(404, ["null for uri: " + req.path])

    def _issue(self, id_or_key: str) -> dict[str, Any]:
        issue = self.issues.get(id_or_key) or next(
            (i for i in self.issues.values() if i["key"] == id_or_key.upper()), None
        )
        if issue is None:
            raise _failure(404, ["Issue does not exist or you do not have permission to see it."])
        return issue

    @staticmethod
    def _body(req: SimRequest) -> dict[str, Any]:
        if not isinstance(req.body, dict):
            raise _failure(400, ["Unexpected character: the body is not a JSON object"])
        return req.body

    # -- values --------------------------------------------------------------------------------
    def _text(self, value: Any, version: str, field: str) -> tuple[str, Any]:
        """(plain text, stored form) of a description or comment body."""
        if version == "3":
            if not _is_adf(value):
                raise _failure(
                    400,
                    errors={
                        field: "Operation value must be an Atlassian "
                        "Document (see the Atlassian Document Format)"
                    },
                )
            return adf_text(value).rstrip("\n"), value
        if not isinstance(value, str):
            raise _failure(400, errors={field: "Operation value must be a string"})
        return value, value

    def _find_user(self, body: dict[str, Any]) -> dict[str, str] | None:
        if self.flavor == "cloud":
            if "name" in body:
                raise _failure(
                    400,
                    [
                        "'accountId' must be the only user identifying query "
                        "parameter in GDPR strict mode."
                    ],
                )
            account = body.get("accountId")
            if account is None:
                return None
            user = next((u for u in self.users if u["accountId"] == account), None)
        else:
            name = body.get("name")
            if name is None:
                return None
            user = next((u for u in self.users if u["name"] == name), None)
        if user is None:
            who = body.get("accountId") or body.get("name")
            raise _failure(400, errors={"assignee": f"User '{who}' does not exist."})
        return user

    def _set_fields(self, issue: dict[str, Any], fields: dict[str, Any], version: str) -> None:
        errors: dict[str, str] = {}
        for name in fields:
            if name not in SETTABLE and not re.fullmatch(r"customfield_\d+", name):
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate "
                    "screen, or unknown."
                )
        labels = fields.get("labels", issue.get("labels", []))
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            errors["labels"] = "labels must be a list of strings"
        elif any(" " in x or not x for x in labels):
            bad = next(x for x in labels if " " in x or not x)
            errors["labels"] = f"The label '{bad}' contains spaces which is invalid."
        if "summary" in fields:
            summary = fields["summary"]
            if not isinstance(summary, str) or not summary.strip():
                errors["summary"] = "You must specify a summary of the issue."
            elif len(summary) > 255 or "\n" in summary:
                errors["summary"] = "Summary must be less than 255 characters and one line."
        priority = fields.get("priority")
        if priority is not None and (
            not isinstance(priority, dict) or priority.get("name") not in PRIORITIES
        ):
            errors["priority"] = f"Specify the Priority (name) in one of {', '.join(PRIORITIES)}"
        if errors:
            raise _failure(400, errors=errors)
        if "description" in fields:
            if fields["description"] is None:
                issue["description"], issue["description_raw"] = "", None
            else:
                issue["description"], issue["description_raw"] = self._text(
                    fields["description"], version, "description"
                )
        if "assignee" in fields:
            user = self._find_user(fields["assignee"] or {})
            issue["assignee"] = user["accountId"] if user else None
        for name, value in fields.items():
            if name not in ("description", "assignee", "project", "issuetype"):
                issue[name] = value
        issue["updated"] = _now()

    # -- issues ---------------------------------------------------------------------------------
    def _create(self, req: SimRequest, version: str) -> SimResponse:
        fields = self._body(req).get("fields")
        if not isinstance(fields, dict):
            raise _failure(400, ["fields: an object is required"])
        given = fields.get("project")
        project = given.get("key") if isinstance(given, dict) else None
        if project not in self.projects:
            raise _failure(400, errors={"project": "valid project is required"})
        given = fields.get("issuetype")
        itype: dict[str, Any] = given if isinstance(given, dict) else {}
        type_id = next(
            (
                k
                for k, v in self.issue_types.items()
                if itype.get("id") == k or itype.get("name") == v
            ),
            None,
        )
        if type_id is None:
            raise _failure(400, errors={"issuetype": "valid issue type is required"})
        if "summary" not in fields:
            raise _failure(400, errors={"summary": "You must specify a summary of the issue."})
        first = next(iter(self.statuses))
        issue: dict[str, Any] = {
            "id": str(self.next_id),
            "key": f"{project}-{self.counters[project] + 1}",
            "project": project,
            "issuetype": type_id,
            "status": first,
            "labels": [],
            "description": "",
            "description_raw": None,
            "assignee": None,
            "reporter": self.users[0]["accountId"],
            "resolution": None,
            "comments": [],
            "created": _now(),
            "created_ts": time.monotonic(),
        }
        self._set_fields(issue, fields, version)
        self.counters[project] += 1
        self.next_id += 1
        self.issues[issue["id"]] = issue
        return SimResponse(
            201,
            {
                "id": issue["id"],
                "key": issue["key"],
                "self": f"{self.base_url}/rest/api/{version}/issue/{issue['id']}",
            },
        )

    def _issue_call(self, req: SimRequest, version: str, issue: dict[str, Any]) -> SimResponse:
        if req.method == "GET":
            wanted = [f for f in req.query.get("fields", "").split(",") if f]
            return SimResponse(200, self._render(issue, version, wanted or ["*all"]))
        if req.method == "PUT":
            fields = self._body(req).get("fields", {})
            if not isinstance(fields, dict) or {"project", "issuetype"} & set(fields):
                raise _failure(400, ["fields: an object without project or issuetype"])
            self._set_fields(issue, fields, version)
            return SimResponse(204)
        raise _failure(405, [f"{req.method} is not allowed"])

    def _comment(self, req: SimRequest, version: str, issue: dict[str, Any]) -> SimResponse:
        if req.method == "GET":
            comments = [self._render_comment(c, version) for c in issue["comments"]]
            return SimResponse(
                200,
                {"startAt": 0, "maxResults": 1048576, "total": len(comments), "comments": comments},
            )
        if req.method != "POST":
            raise _failure(405, [f"{req.method} is not allowed"])
        text, raw = self._text(self._body(req).get("body"), version, "comment")
        if not text.strip():
            raise _failure(400, errors={"comment": "Comment body can not be empty!"})
        comment = {
            "id": str(10000 + sum(len(i["comments"]) for i in self.issues.values())),
            "body": text,
            "raw": raw,
            "author": self.users[0]["accountId"],
            "created": _now(),
        }
        issue["comments"].append(comment)
        issue["updated"] = comment["created"]
        return SimResponse(201, self._render_comment(comment, version))

    def _assign(self, req: SimRequest, issue: dict[str, Any]) -> SimResponse:
        user = self._find_user(self._body(req))
        issue["assignee"] = user["accountId"] if user else None
        issue["updated"] = _now()
        return SimResponse(204)

    def _status_id(self, name: str) -> str:
        return next(sid for sid, (n, _) in self.statuses.items() if n == name)

    def _move(self, issue: dict[str, Any], status_id: str, resolution: str | None) -> None:
        category = self.statuses[status_id][1]
        issue["status"] = status_id
        issue["resolution"] = (resolution or "Done") if category == "done" else None
        issue["updated"] = _now()

    def _transitions(self, req: SimRequest, issue: dict[str, Any]) -> SimResponse:
        available = [t for t in self.transitions if self._status_id(t[2]) != issue["status"]]
        if req.method == "GET":
            return SimResponse(
                200,
                {
                    "expand": "transitions",
                    "transitions": [
                        {
                            "id": tid,
                            "name": name,
                            "to": self._render_status(self._status_id(to)),
                            "hasScreen": False,
                            "isGlobal": True,
                            "isInitial": False,
                            "isAvailable": True,
                            "isConditional": False,
                        }
                        for tid, name, to in available
                    ],
                },
            )
        if req.method != "POST":
            raise _failure(405, [f"{req.method} is not allowed"])
        body = self._body(req)
        tid = str((body.get("transition") or {}).get("id", ""))
        chosen = next((t for t in available if t[0] == tid), None)
        if chosen is None:
            raise _failure(400, [f"Transition id '{tid}' is not valid for this issue."])
        target = self._status_id(chosen[2])
        fields = body.get("fields") or {}
        unknown = set(fields) - {"resolution"}
        resolution = (
            (fields.get("resolution") or {}).get("name") if "resolution" in fields else None
        )
        if unknown or (
            "resolution" in fields
            and (self.statuses[target][1] != "done" or resolution not in RESOLUTIONS)
        ):
            name = next(iter(unknown or {"resolution"}))
            raise _failure(
                400,
                errors={
                    name: f"Field '{name}' cannot be set. It is not on the "
                    "appropriate screen, or unknown."
                },
            )
        self._move(issue, target, resolution)
        return SimResponse(204)

    # -- search -----------------------------------------------------------------------------
    def _search(self, req: SimRequest, version: str, rest: str) -> SimResponse:
        if rest == "search" and self.flavor == "cloud":
            raise _failure(
                410,
                [
                    "The requested API has been removed. Please migrate to the "
                    "/rest/api/3/search/jql API."
                ],
            )
        if rest == "search/jql" and self.flavor == "server":
            raise _failure(404, ["null for uri: " + req.path])
        params: dict[str, Any] = dict(req.query)
        if req.method == "POST":
            params.update(self._body(req))
        fields = params.get("fields", [])
        fields = [f for f in fields.split(",") if f] if isinstance(fields, str) else list(fields)
        try:
            limit = int(params.get("maxResults", 50))
            start = int(params.get("startAt", 0))
            if rest == "search/jql":
                token = params.get("nextPageToken") or ""
                start = int(base64.b64decode(token).decode()) if token else 0
        except ValueError:
            raise _failure(400, ["maxResults, startAt or nextPageToken is not valid"]) from None
        matched = self._jql(str(params.get("jql", "")))
        if self.flavor == "cloud" and self.search_lag > 0:
            now = time.monotonic()
            matched = [i for i in matched if now - i["created_ts"] >= self.search_lag]
        page = matched[start : start + limit]
        default = [] if rest == "search/jql" else ["*all"]
        issues = [self._render(i, version, fields or default) for i in page]
        if rest == "search":
            return SimResponse(
                200,
                {"startAt": start, "maxResults": limit, "total": len(matched), "issues": issues},
            )
        out: dict[str, Any] = {"issues": issues, "isLast": start + limit >= len(matched)}
        if not out["isLast"]:
            out["nextPageToken"] = base64.b64encode(str(start + limit).encode()).decode()
        return SimResponse(200, out)

    def _jql(self, jql: str) -> list[dict[str, Any]]:
        parts = re.split(r"\s*\border\s+by\s+", jql, maxsplit=1, flags=re.I)
        where, order = parts[0], parts[1] if len(parts) > 1 else ""
        issues = list(self.issues.values())
        for clause in (c for c in re.split(r"\s+and\s+", where.strip(), flags=re.I) if c):
            issues = [i for i in issues if self._clause(clause)(i)]
        if order.strip().lower().startswith("created desc"):
            issues.reverse()
        return issues

    def _clause(self, clause: str) -> Any:
        found = CLAUSE.match(clause)
        if not found:
            raise _failure(400, [f"Error in the JQL Query: cannot read '{clause.strip()}'."])
        field, op = found["field"].lower(), " ".join(found["op"].lower().split())
        raw = found["value"]
        values = (
            [v.strip().strip("'\"") for v in raw[1:-1].split(",")]
            if raw.startswith("(")
            else [raw.strip("'\"")]
        )
        if (raw.startswith("(")) != (op in ("in", "not in")):
            raise _failure(400, [f"Error in the JQL Query: '{op}' does not fit '{raw}'."])
        if field in ("key", "issuekey", "id"):
            for value in values:
                self._check_key(value)
            keep = {self._issue(v)["id"] for v in values}
            return self._op(op, lambda i: {i["id"]}, keep)
        getters = {
            "labels": lambda i: set(i["labels"]),
            "project": lambda i: {i["project"]},
            "status": lambda i: {self.statuses[i["status"]][0].lower()},
            "statuscategory": lambda i: {
                self.statuses[i["status"]][1],
                CATEGORIES[self.statuses[i["status"]][1]][1].lower(),
            },
        }
        if field not in getters:
            raise _failure(
                400,
                [
                    f"Field '{found['field']}' does not exist or you do not have "
                    "permission to view it."
                ],
            )
        lowered = field != "labels"
        wanted = {v.lower() if lowered else v for v in values}
        return self._op(op, getters[field], wanted)

    @staticmethod
    def _op(op: str, get: Any, wanted: set[str]) -> Any:
        if op in ("=", "in"):
            return lambda i: bool(get(i) & wanted)
        return lambda i: not get(i) & wanted

    def _check_key(self, value: str) -> None:
        if value.isdigit() and value in self.issues:
            return
        if not any(i["key"] == value.upper() for i in self.issues.values()):
            raise _failure(400, [f"An issue with key '{value}' does not exist for field 'key'."])

    # -- rendering -----------------------------------------------------------------------------
    def _render_user(self, user: dict[str, str]) -> dict[str, Any]:
        if self.flavor == "cloud":
            return {
                "accountId": user["accountId"],
                "displayName": user["displayName"],
                "emailAddress": user["emailAddress"],
                "active": True,
            }
        return {
            "name": user["name"],
            "key": user["name"],
            "displayName": user["displayName"],
            "emailAddress": user["emailAddress"],
            "active": True,
        }

    def _render_status(self, status_id: str) -> dict[str, Any]:
        name, category = self.statuses[status_id]
        cid, cname, color = CATEGORIES[category]
        return {
            "self": f"{self.base_url}/rest/api/2/status/{status_id}",
            "id": status_id,
            "name": name,
            "statusCategory": {"id": int(cid), "key": category, "colorName": color, "name": cname},
        }

    def _render_comment(self, comment: dict[str, Any], version: str) -> dict[str, Any]:
        author = next(u for u in self.users if u["accountId"] == comment["author"])
        body = (
            comment["raw"]
            if version == "3" and comment["raw"] is not None
            else (_to_adf(comment["body"]) if version == "3" else comment["body"])
        )
        return {
            "id": comment["id"],
            "author": self._render_user(author),
            "body": body,
            "created": comment["created"],
            "updated": comment["created"],
        }

    def _render(self, issue: dict[str, Any], version: str, wanted: list[str]) -> dict[str, Any]:
        user = {u["accountId"]: u for u in self.users}
        description: Any = issue["description"] or None
        if version == "3" and description is not None:
            description = (
                issue["description_raw"]
                if isinstance(issue["description_raw"], dict)
                else _to_adf(issue["description"])
            )
        every: dict[str, Any] = {
            "summary": issue.get("summary", ""),
            "description": description,
            "labels": list(issue["labels"]),
            "status": self._render_status(issue["status"]),
            "assignee": self._render_user(user[issue["assignee"]]) if issue["assignee"] else None,
            "reporter": self._render_user(user[issue["reporter"]]),
            "resolution": {"name": issue["resolution"]} if issue["resolution"] else None,
            "issuetype": {"id": issue["issuetype"], "name": self.issue_types[issue["issuetype"]]},
            "project": {"key": issue["project"]},
            "priority": issue.get("priority"),
            "created": issue["created"],
            "updated": issue.get("updated", issue["created"]),
            "comment": {
                "comments": [self._render_comment(c, version) for c in issue["comments"]],
                "total": len(issue["comments"]),
            },
        }
        every.update({k: v for k, v in issue.items() if k.startswith("customfield_")})
        everything = bool({"*all", "*navigable"} & set(wanted))
        fields = {k: v for k, v in every.items() if everything or k in wanted}
        out: dict[str, Any] = {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{self.base_url}/rest/api/{version}/issue/{issue['id']}",
        }
        if fields:
            out["fields"] = fields
        return out

    # -- control -----------------------------------------------------------------------------
    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """As a person: `status` (a status name), `assignee` (a user name or null),
        `comment` (text), `resolution`."""
        issue = self._issue(record_id)
        if "status" in changes:
            names = {n.lower(): sid for sid, (n, _) in self.statuses.items()}
            sid = names.get(str(changes["status"]).lower())
            if sid is None:
                raise SimError(400, {"error": f"no status {changes['status']!r}"})
            self._move(issue, sid, changes.get("resolution"))
        if "assignee" in changes:
            name = changes["assignee"]
            found = next((u for u in self.users if u["name"] == name), None)
            if name is not None and found is None:
                raise SimError(400, {"error": f"no user {name!r}"})
            issue["assignee"] = found["accountId"] if found else None
        if changes.get("comment"):
            issue["comments"].append(
                {
                    "id": str(90000 + len(issue["comments"])),
                    "body": str(changes["comment"]),
                    "raw": None,
                    "author": self.users[0]["accountId"],
                    "created": _now(),
                }
            )
        issue["updated"] = _now()
        return self._dump(issue)

    def _dump(self, issue: dict[str, Any]) -> dict[str, Any]:
        name, category = self.statuses[issue["status"]]
        assignee = next(
            (u["name"] for u in self.users if u["accountId"] == issue["assignee"]), None
        )
        return {
            **{k: v for k, v in issue.items() if k not in ("comments", "created_ts")},
            "status": name,
            "statusCategory": category,
            "assignee": assignee,
            "comments": [c["body"] for c in issue["comments"]],
        }

    def tickets(self) -> list[Ticket]:
        out = []
        for issue in self.issues.values():
            dump = self._dump(issue)
            out.append(
                Ticket(
                    id=issue["id"],
                    number=issue["key"],
                    keys=list(issue["labels"]),
                    state=dump["statusCategory"],
                    assignee=dump["assignee"] or "",
                    notes=list(dump["comments"]),
                )
            )
        return out

    def state(self) -> dict[str, Any]:
        return {
            "flavor": self.flavor,
            "issues": [self._dump(i) for i in self.issues.values()],
            "users": [self._render_user(u) | {"name": u["name"]} for u in self.users],
        }
