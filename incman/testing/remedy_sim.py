"""A BMC Remedy ITSM simulator: the AR System REST API on the incident forms.

It serves them as the reference describes it (remote-apis.md), on a real HTTP server.

What it keeps like AR: `POST /api/jwt/login` (form fields) answers the token as plain text,
calls carry `Authorization: AR-JWT <token>`, tokens run out after `token_ttl` seconds (the
`401` fault expires them at once) and `POST /api/jwt/logout` ends one; entries under
`/api/arsys/v1/entry/{form}` with `{"values": {...}}` bodies; `HPD:IncidentInterface_Create`
opens an incident only with `z1D_Action=CREATE` and a customer that is exactly one People
record, and answers 201 with `Location` (and the `fields=values(...)` asked for);
`HPD:IncidentInterface` reads with `q=` qualifications (`'Field'="value"`, AND, OR, NOT,
parentheses) and changes with PUT on the Request ID (`<entry>|<entry>`); work notes are
`HPD:WorkLog` entries; the summary (`Description`) holds 100 characters; resolving needs
`Status_Reason` and `Resolution`; Closed and Cancelled are final; errors are
`[{"messageType": "ERROR", "messageText", "messageAppendedText", "messageNumber"}]`."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

from incman.testing.remedy_qual import QualificationError, parse_qualification
from incman.testing.simbase import SimApp, SimError, SimRequest, SimResponse, Ticket

ENTRY_PATH = re.compile(r"^/api/arsys/v1/entry/(?P<form>[^/]+)(?:/(?P<id>[^/]+))?/?$")
INTERFACE, CREATE_FORM, WORKLOG = (
    "HPD:IncidentInterface",
    "HPD:IncidentInterface_Create",
    "HPD:WorkLog",
)
STATUSES = ("New", "Assigned", "In Progress", "Pending", "Resolved", "Closed", "Cancelled")
FINAL = ("Closed", "Cancelled")
IMPACTS = (
    "1-Extensive/Widespread",
    "2-Significant/Large",
    "3-Moderate/Limited",
    "4-Minor/Localized",
)
URGENCIES = ("1-Critical", "2-High", "3-Medium", "4-Low")
SERVICE_TYPES = (
    "User Service Restoration",
    "User Service Request",
    "Infrastructure Restoration",
    "Infrastructure Event",
)
SOURCES = (
    "Direct Input", "Email", "External Escalation", "Fax", "Self Service", "Systems Management",
    "Phone", "Voice Mail", "Walk In", "Web", "Other", "BMC Impact Manager Event",
)  # fmt: skip
# unverified: the Status_Reason values each status accepts (from the ITSM UI's lists)
REASONS = {
    "Pending": (
        "Client Hold", "Client Additional Information Requested", "Monitoring Incident",
        "Support Contact Hold", "Third Party Vendor Action Reqd", "Local Site Action Required",
    ),
    "Resolved": (
        "No Further Action Required", "Automated Resolution Reported",
        "Customer Follow-Up Required", "Future Enhancement", "Monitoring Incident",
        "Temporary Corrective Action",
    ),
    "Closed": ("Automated Resolution Reported", "Infrastructure Change Created"),
    "Cancelled": ("No longer a Causal CI", "Request Cancelled"),
}  # fmt: skip
# unverified: the Work Log Type values (from the ITSM UI's list)
WORK_LOG_TYPES = (
    "General Information", "Email System", "Phone Communication", "Working Log",
    "Customer Communication", "Resolution Communications", "Incident Task / Action",
)  # fmt: skip
CHOICES = {
    "Impact": IMPACTS,
    "Urgency": URGENCIES,
    "Status": STATUSES,
    "Service Type": SERVICE_TYPES,
    "Reported Source": SOURCES,
}
WRITABLE = frozenset(
    {
        "Description", "Detailed Decription", "Impact", "Urgency", "Status", "Status_Reason",
        "Resolution", "Service Type", "Reported Source", "Assigned Group",
        "Assigned Support Company", "Assigned Support Organization", "Assignee",
        "Assignee Login ID", "Vendor Ticket Number", "Categorization Tier 1",
        "Categorization Tier 2", "Categorization Tier 3", "Product Categorization Tier 1",
        "Product Categorization Tier 2", "Product Categorization Tier 3", "Resolution Category",
    }
)  # fmt: skip
# the create form's names that differ from the interface's; unverified: "Customer Login ID"
CREATE_NAMES = {
    "First_Name": "First Name",
    "Last_Name": "Last Name",
    "Login_ID": "Customer Login ID",
    "Service_Type": "Service Type",
    "Detailed_Decription": "Detailed Decription",  # sic, on both forms
}
# unverified: "Re-Opened Date" (the other names are in public answers of HPD:IncidentInterface)
READ_ONLY = (
    "Request ID", "Entry ID", "Incident Number", "Priority", "Submitter", "Submit Date",
    "Last Modified Date", "Last Resolved Date", "Closed Date", "Re-Opened Date", "First Name",
    "Last Name", "Customer Login ID",
)  # fmt: skip
WORKLOG_FIELDS = (
    "Work Log ID", "Incident Number", "Work Log Type", "Description", "Detailed Description",
    "View Access", "Secure Work Log", "Submitter", "Submit Date",
)  # fmt: skip
INTERFACE_FIELDS = (*sorted(WRITABLE), *READ_ONLY)
PRIORITIES = ("Critical", "Critical", "High", "High", "Medium", "Low", "Low")


def ar_error(status: int, number: int, text: str, appended: str | None = None) -> SimError:
    return SimError(
        status,
        [
            {
                "messageType": "ERROR",
                "messageText": text,
                "messageAppendedText": appended,
                "messageNumber": number,
            }
        ],
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())


def _names(text: str) -> list[str]:
    """`values(A,B C)` → ["A", "B C"]."""
    found = re.fullmatch(r"\s*values\((.*)\)\s*", text or "")
    return [n.strip() for n in found.group(1).split(",") if n.strip()] if found else []


class RemedySim(SimApp):
    """Options: the AR user (`username`, `password`), `token_ttl` (seconds a login lasts),
    the support `people` (Login IDs, also customers) and `groups`, `answer_values`
    (whether a create answers the values asked for with `fields=`, or only `Location`) and
    `create_drops` (fields a customised create form does not pass on to the incident)."""

    name = "remedy"

    def __init__(
        self,
        username: str = "incman",
        password: str = "incman-secret",
        token_ttl: float | str = 3600.0,
        people: list[str] | str | None = None,
        groups: list[str] | str | None = None,
        answer_values: bool | str = True,
        create_drops: list[str] | str = "",
    ) -> None:
        super().__init__()
        self.username, self.password = username, password
        self.token_ttl = float(token_ttl)
        logins = people if people is not None else ["allen", "oncall1", "oncall2", "tester"]
        self.people = {
            login: (login.capitalize(), "Support")
            for login in (logins.split(",") if isinstance(logins, str) else logins)
        }
        names = groups if groups is not None else ["Service Desk", "Network Support"]
        self.groups = names.split(",") if isinstance(names, str) else list(names)
        self.answer_values = str(answer_values).lower() in ("1", "true", "yes")
        drops = create_drops.split(",") if isinstance(create_drops, str) else create_drops
        self.create_drops = {d.strip() for d in drops if d.strip()}
        self.clock: Callable[[], float] = time.monotonic
        self.tokens: dict[str, float] = {}  # token → when it runs out (self.clock)
        self.reset()

    def reset(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}  # by Request ID
        self.created: dict[str, dict[str, Any]] = {}  # create-form entries
        self.worklogs: list[dict[str, Any]] = []
        self.next_entry, self.next_number = 527, 430  # entry ids and numbers differ, as in AR

    # -- auth and errors -----------------------------------------------------------------------
    def authenticate(self, req: SimRequest) -> bool:
        if req.path == "/api/jwt/login":
            return True  # the credentials are in the form
        auth = req.headers.get("authorization", "")
        if not auth.startswith("AR-JWT "):
            return False
        expires = self.tokens.get(auth[7:].strip())
        return expires is not None and self.clock() < expires

    def expire_logins(self) -> None:
        self.tokens.clear()

    def error(self, status: int, message: str) -> SimResponse:
        # unverified: the message numbers of AR's authentication and server errors
        number = {401: 623, 429: 9093, 500: 9999}.get(status, 9999)
        text = "Authentication failed" if status == 401 else message
        return ar_error(status, number, text, message if status == 401 else None).response

    def _login(self, req: SimRequest) -> SimResponse:
        # unverified: that a JSON body is refused (the reference names form fields)
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise ar_error(400, 9093, "The login takes form fields username and password")
        form = {k: v[0] for k, v in parse_qs(req.raw.decode(errors="replace")).items()}
        if (form.get("username"), form.get("password")) != (self.username, self.password):
            raise ar_error(401, 623, "Authentication failed", form.get("username"))
        token = ".".join(secrets.token_urlsafe(n) for n in (12, 24, 16))  # JWT-shaped
        self.tokens[token] = self.clock() + self.token_ttl
        return SimResponse(200, raw=token.encode(), headers={"Content-Type": "text/plain"})

    def handle(self, req: SimRequest) -> SimResponse:
        if req.path == "/api/jwt/login" and req.method == "POST":
            return self._login(req)
        if req.path == "/api/jwt/logout" and req.method == "POST":  # unverified: answers 204
            self.tokens.pop(req.headers["authorization"][7:].strip(), None)
            return SimResponse(204)
        found = ENTRY_PATH.match(req.path)
        if not found:
            raise ar_error(404, 9999, f"No resource at {req.path}")
        form, entry_id = found["form"], found["id"]
        route = {
            (INTERFACE, "GET", False): lambda: self._list(req, INTERFACE),
            (INTERFACE, "GET", True): lambda: self._get(req, self._incident(entry_id)),
            (INTERFACE, "PUT", True): lambda: self._put(req, entry_id),
            (CREATE_FORM, "POST", False): lambda: self._create(req),
            (CREATE_FORM, "GET", True): lambda: self._get(req, self._created(entry_id)),
            (WORKLOG, "POST", False): lambda: self._add_worklog(req),
            (WORKLOG, "GET", False): lambda: self._list(req, WORKLOG),
        }.get((form, req.method, entry_id is not None))
        if route is None:
            if form not in (INTERFACE, CREATE_FORM, WORKLOG):
                # unverified: the HTTP status of AR's error 303
                raise ar_error(404, 303, "Form does not exist on server", form)
            raise ar_error(405, 9999, f"{req.method} is not allowed here", form)
        return route()

    # -- reads ---------------------------------------------------------------------------------
    def _self(self, form: str, entry_id: str) -> dict[str, Any]:
        href = f"{self.base_url}/api/arsys/v1/entry/{form}/{quote(entry_id, safe='|')}"
        return {"self": [{"href": href}]}

    def _shown(self, values: dict[str, Any], req: SimRequest) -> dict[str, Any]:
        wanted = _names(req.query.get("fields", ""))
        # unverified: a field named in fields= that the form lacks is an error in AR
        return {k: values.get(k) for k in wanted} if wanted else dict(values)

    def _get(self, req: SimRequest, values: dict[str, Any]) -> SimResponse:
        form = CREATE_FORM if "z1D_Action" in values else INTERFACE
        return SimResponse(
            200,
            {"values": self._shown(values, req), "_links": self._self(form, values["Request ID"])},
        )

    def _list(self, req: SimRequest, form: str) -> SimResponse:
        rows = list(self.incidents.values()) if form == INTERFACE else self.worklogs
        known = set(INTERFACE_FIELDS if form == INTERFACE else WORKLOG_FIELDS)
        if req.query.get("q"):
            try:
                test = parse_qualification(req.query["q"], known)
            except QualificationError as exc:
                # unverified: AR's number and wording for a qualification it cannot read
                raise ar_error(400, 1587, "Qualification line error", str(exc)) from None
            rows = [r for r in rows if test(r)]
        try:
            offset, limit = int(req.query.get("offset", "0")), int(req.query.get("limit", "0"))
        except ValueError:
            raise ar_error(400, 9093, "limit and offset must be numbers") from None
        page = rows[offset : offset + limit] if limit else rows[offset:]
        key = "Request ID" if form == INTERFACE else "Work Log ID"
        entries = [
            {"values": self._shown(r, req), "_links": self._self(form, r[key])} for r in page
        ]
        return SimResponse(200, {"entries": entries, "_links": {"self": [{"href": req.path}]}})

    def _incident(self, entry_id: str) -> dict[str, Any]:
        record = self.incidents.get(entry_id) or next(
            (
                r
                for r in self.incidents.values()
                if entry_id in (r["Entry ID"], r["Incident Number"])
            ),
            None,
        )
        if record is None:
            # unverified: the HTTP status of AR's error 302
            raise ar_error(404, 302, "Entry does not exist in database", entry_id)
        return record

    def _created(self, entry_id: str) -> dict[str, Any]:
        if entry_id not in self.created:
            raise ar_error(404, 302, "Entry does not exist in database", entry_id)
        return self.created[entry_id]

    # -- writes --------------------------------------------------------------------------------
    @staticmethod
    def _values(req: SimRequest) -> dict[str, Any]:
        if not isinstance(req.body, dict) or not isinstance(req.body.get("values"), dict):
            raise ar_error(400, 9093, 'The body must be {"values": {...}}')
        return dict(req.body["values"])

    def _blank(self, entry: str) -> dict[str, Any]:
        now = _now()
        fields: dict[str, Any] = dict.fromkeys(INTERFACE_FIELDS)
        fields.update({"Request ID": f"{entry}|{entry}", "Entry ID": entry, "Status": "New"})
        fields.update({"Submitter": self.username, "Submit Date": now, "Last Modified Date": now})
        return fields

    def _customer(self, values: dict[str, Any]) -> tuple[str, str, str]:
        login = values.pop("Customer Login ID", None)
        first, last = values.pop("First Name", None), values.pop("Last Name", None)
        matches = [
            (f, la, lo)
            for lo, (f, la) in self.people.items()
            if (login and lo == login) or (not login and (f, la) == (first, last))
        ]
        if len(matches) != 1:
            # the ITSM's own wording; unverified: its message number
            found = "No" if not matches else "Multiple"
            raise ar_error(
                400,
                1291053,
                "Incident contact information is not valid",
                f"{found} records have been found for the Incident contact information "
                "you have provided",
            )
        return matches[0]

    def _create(self, req: SimRequest) -> SimResponse:
        raw = self._values(req)
        # unverified: without z1D_Action=CREATE the create form opens no incident
        if raw.pop("z1D_Action", None) != "CREATE":
            raise ar_error(400, 326, "Required field cannot be blank.", "z1D_Action")
        values = {CREATE_NAMES.get(k, k): v for k, v in raw.items() if k not in self.create_drops}
        # unverified: which fields the create form requires
        for name in (
            "Description",
            "Impact",
            "Urgency",
            "Service Type",
            "Reported Source",
            "Status",
        ):
            if not values.get(name):
                raise ar_error(400, 326, "Required field cannot be blank.", name)
        first, last, login = self._customer(values)
        entry = f"INC{self.next_entry:012d}"
        record = self._blank(entry)
        record.update({"First Name": first, "Last Name": last, "Customer Login ID": login})
        record["Incident Number"] = f"INC{self.next_number:012d}"
        self._apply(record, values, creating=True)
        self.next_entry += 1
        self.next_number += 1
        self.incidents[record["Request ID"]] = record
        create_id = f"{len(self.created) + 1:015d}"
        self.created[create_id] = {
            "Request ID": create_id,
            "z1D_Action": "CREATE",
            "Incident Number": record["Incident Number"],
            "Incident_Entry_ID": entry,
            "Create Date": record["Submit Date"],
        }
        location = f"{self.base_url}/api/arsys/v1/entry/{CREATE_FORM}/{create_id}"
        wanted = _names(req.query.get("fields", ""))
        if not (wanted and self.answer_values):
            return SimResponse(201, headers={"Location": location})
        body = {
            "values": {k: self.created[create_id].get(k) for k in wanted},
            "_links": {"self": [{"href": f"{self.base_url}/api/arsys/v1/entry/{CREATE_FORM}"}]},
        }
        return SimResponse(201, body, {"Location": location})

    def _put(self, req: SimRequest, entry_id: str) -> SimResponse:
        record = self._incident(entry_id)
        self._apply(record, self._values(req))
        return SimResponse(204)

    def _check_fields(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in WRITABLE:
                # unverified: AR's number for a field the form does not have
                raise ar_error(400, 314, "The field does not exist on the current form", name)
            # unverified: that a value outside a selection field's list is AR's error 306
            allowed = CHOICES.get(name)
            if allowed and value is not None and value not in allowed:
                raise ar_error(
                    400, 306, "Value does not fall within the limits specified for the field", name
                )
        # unverified: the 100-character length of the summary field
        if len(str(values.get("Description") or "")) > 100:
            raise ar_error(
                400,
                306,
                "Value does not fall within the limits specified for the field",
                "Description (100)",
            )
        group = values.get("Assigned Group")
        if group and group not in self.groups:  # unverified: the ITSM's check and wording
            raise ar_error(400, 1291002, "The Assigned Group is not valid", str(group))

    def _apply(
        self,
        record: dict[str, Any],
        values: dict[str, Any],
        creating: bool = False,
        admin: bool = False,
    ) -> None:
        if not creating and not admin and record["Status"] in FINAL:
            # unverified: the message and number of the ITSM's closed-incident rule
            raise ar_error(
                400,
                1291005,
                "A closed or cancelled incident cannot be modified",
                record["Incident Number"],
            )
        self._check_fields(values)
        new = {**record, **values}
        if "Assignee Login ID" in values:
            login = values["Assignee Login ID"]
            if login and login not in self.people:
                # unverified: the wording of the ITSM's check of the assignee
                raise ar_error(
                    400, 1291003, "The Assignee Login ID is not a valid support person", str(login)
                )
            new["Assignee"] = " ".join(self.people[login]) if login else None
            if login and new["Status"] == "New" and "Status" not in values:
                new["Status"] = "Assigned"  # unverified: the ITSM's workflow on assignment
        self._check_status(record, new, values)
        level = IMPACTS.index(new["Impact"]) + URGENCIES.index(new["Urgency"])
        new["Priority"] = PRIORITIES[level]  # unverified: the ITSM's priority matrix
        now = _now()
        if new["Status"] != record["Status"] and not creating:
            if new["Status"] == "Resolved":
                new["Last Resolved Date"] = now
            elif new["Status"] in FINAL:
                new["Closed Date"] = now
            elif record["Status"] == "Resolved":
                new["Re-Opened Date"] = now
        new["Last Modified Date"] = now
        record.update(new)

    @staticmethod
    def _check_status(old: dict[str, Any], new: dict[str, Any], values: dict[str, Any]) -> None:
        status = new["Status"]
        # unverified: that the ITSM clears the reason of a resolved incident when it re-opens
        if status != old["Status"] and "Status_Reason" not in values and status not in REASONS:
            new["Status_Reason"] = None  # back to an open status: the old reason goes
        reason = new["Status_Reason"]
        if status in REASONS and status != "Closed" and reason not in REASONS[status]:
            raise ar_error(
                400,
                1291004,
                f"Status_Reason is required and must fit the status {status}",
                str(reason),
            )
        if status not in REASONS and reason:
            raise ar_error(
                400, 1291004, f"Status_Reason does not apply to the status {status}", str(reason)
            )
        if status == "Resolved" and not new["Resolution"]:
            # unverified: the wording; that a resolution is required is the reference's
            raise ar_error(
                400, 1291006, "Resolution is required to resolve an incident", "Resolution"
            )
        if status == "In Progress" and not new["Assignee Login ID"]:
            # unverified: the ITSM's rule that work in progress has an assignee
            raise ar_error(
                400, 1291007, "An assignee is required for the status In Progress", "Assignee"
            )

    def _add_worklog(self, req: SimRequest) -> SimResponse:
        values = self._values(req)
        unknown = set(values) - set(WORKLOG_FIELDS)
        if unknown:
            raise ar_error(
                400, 314, "The field does not exist on the current form", sorted(unknown)[0]
            )
        number = values.get("Incident Number")
        # unverified: the ITSM's check of a work note's incident, its required fields
        if not any(r["Incident Number"] == number for r in self.incidents.values()):
            raise ar_error(400, 1291008, "The Incident Number is not valid", str(number))
        if values.get("Work Log Type") not in WORK_LOG_TYPES:
            raise ar_error(
                400,
                306,
                "Value does not fall within the limits specified for the field",
                "Work Log Type",
            )
        if not (values.get("Description") or values.get("Detailed Description")):
            raise ar_error(400, 326, "Required field cannot be blank.", "Description")
        entry: dict[str, Any] = dict.fromkeys(WORKLOG_FIELDS)
        entry.update(values)
        wlg = f"WLG{len(self.worklogs) + 1:012d}"
        entry.update({"Work Log ID": wlg, "Submitter": self.username, "Submit Date": _now()})
        self.worklogs.append(entry)
        location = f"{self.base_url}/api/arsys/v1/entry/{WORKLOG}/{wlg}"
        return SimResponse(201, headers={"Location": location})

    # -- control -------------------------------------------------------------------------------
    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Changes as a person in the ITSM (closing included); `note` adds a work note."""
        record = self._incident(record_id)
        by = str(changes.pop("by", "admin"))
        note = changes.pop("note", None)
        if note:
            self.worklogs.append(
                {f: None for f in WORKLOG_FIELDS}
                | {
                    "Work Log ID": f"WLG{len(self.worklogs) + 1:012d}",
                    "Incident Number": record["Incident Number"],
                    "Work Log Type": "General Information",
                    "Detailed Description": str(note),
                    "Submitter": by,
                    "Submit Date": _now(),
                }
            )
        if changes:
            self._apply(record, changes, admin=True)
        return self._dump(record)

    def _dump(self, record: dict[str, Any]) -> dict[str, Any]:
        notes = [w for w in self.worklogs if w["Incident Number"] == record["Incident Number"]]
        return {**record, "worklog": notes}

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=r["Request ID"],
                number=r["Incident Number"],
                keys=[r["Vendor Ticket Number"]] if r["Vendor Ticket Number"] else [],
                state=r["Status"],
                assignee=r["Assignee Login ID"] or "",
                notes=[
                    w["Detailed Description"] or w["Description"] for w in self._dump(r)["worklog"]
                ],
            )
            for r in self.incidents.values()
        ]

    def state(self) -> dict[str, Any]:
        return {
            "incidents": [self._dump(r) for r in self.incidents.values()],
            "created": list(self.created.values()),
            "people": sorted(self.people),
            "groups": list(self.groups),
            "tokens": len(self.tokens),
        }

    def describe(self) -> str:
        return (
            f"remedy simulator at {self.base_url} (user {self.username!r}; customers and "
            f"assignees by Login ID: {', '.join(sorted(self.people))}; groups: "
            f"{', '.join(self.groups)})"
        )
