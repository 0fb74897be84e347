"""BMC Remedy ITSM: incidents through the AR System REST API, found again by correlation key.

Incidents are opened through `HPD:IncidentInterface_Create` (`z1D_Action=CREATE`), read and
changed through `HPD:IncidentInterface`, with work notes in `HPD:WorkLog`; the correlation key
is written to `Vendor Ticket Number`.

AR logins are JWTs that run out (an hour by default): the auth hook logs in with
`POST /api/jwt/login` (the token comes back as plain text, sent as `AR-JWT <token>`), a 401
logs in once more, and shutdown logs out. Resolving needs `Status_Reason` and `Resolution`;
Closed and Cancelled are final, so a re-open of such an incident says CannotReopen (incman
opens a new one). (the errors' shape: docs/remote-systems.md)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import (
    CannotReopen,
    IntegrationError,
    PermanentError,
    TransientError,
)
from incman.integrations.http import HttpClient

log = logging.getLogger(__name__)

API = "/api/arsys/v1/entry"
KEY_FIELD = "Vendor Ticket Number"
READ_FIELDS = (
    "Request ID",
    "Incident Number",
    "Status",
    "Assignee Login ID",
    "Assignee",
    KEY_FIELD,
)
STATUS_CHUNK = 50
SUMMARY_MAX = 100  # the Description (summary) field of HPD:Help Desk holds 100 characters
IMPACTS = (
    "1-Extensive/Widespread",
    "2-Significant/Large",
    "3-Moderate/Limited",
    "4-Minor/Localized",
)
URGENCIES = ("1-Critical", "2-High", "3-Medium", "4-Low")
LEVELS = {5: 0, 4: 1, 3: 2}  # event severity → index into IMPACTS and URGENCIES (else: 3)
SERVICE_TYPES = (
    "User Service Restoration",
    "User Service Request",
    "Infrastructure Restoration",
    "Infrastructure Event",
)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _literal(value: str) -> str:
    """A string in an AR qualification: double quotes, an inner one doubled."""
    return '"' + value.replace('"', '""') + '"'


def _plain(value: Any) -> Any:
    """A field value as AR REST takes it: JSON scalars as they are, anything else as text."""
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


class RemedyConfig(IntegrationConfig):
    """BMC Remedy ITSM through the AR System REST API (AR-JWT login)."""

    url: str = url_setting(required=True, help="the AR System REST address (https://host:8443)")
    username: str = setting("", required=True, help="AR user of the integration")
    password: str = setting("", required=True, secret=True, help="its password")
    login_id: str = setting("", help="the customer's Login_ID (or first_name and last_name)")
    first_name: str = setting("", help="the customer's first name (a People record)")
    last_name: str = setting("", help="the customer's last name")
    service_type: str = setting(
        "Infrastructure Event", choices=SERVICE_TYPES, help="Service_Type of new incidents"
    )
    reported_source: str = setting("Systems Management", help="Reported Source of new incidents")
    create_status: str = setting("New", choices=("New", "Assigned"), help="Status of new incidents")
    assigned_group: str = setting("", help="Assigned Group set on create and assign")
    assigned_support_company: str = setting("", help="Assigned Support Company with the group")
    assigned_support_organization: str = setting("", help="Assigned Support Organization")
    resolve_status_reason: str = setting(
        "Automated Resolution Reported", required=True, help="Status_Reason sent on resolve"
    )
    resolution: str = setting("", help="Resolution text sent on resolve (default: the note)")
    reopen_status: str = setting(
        "Assigned", choices=("Assigned", "In Progress"), help="the Status a re-open sets"
    )
    final_statuses: tuple[str, ...] = setting(
        ("Closed", "Cancelled"), required=True, help="statuses closed for good (no re-open)"
    )
    work_log_type: str = setting("General Information", help="Work Log Type of notes")
    view_access: str = setting(
        "Internal", choices=("Internal", "Public"), help="who may read the notes"
    )
    user_map: dict[str, str] = setting({}, help="incman user → Remedy Login ID")
    web_url: str = setting(
        "", help="browser link of an incident, `{number}` filled in (default: its REST address)"
    )
    create_form: str = setting("HPD:IncidentInterface_Create", help="the form that opens")
    interface_form: str = setting("HPD:IncidentInterface", help="the form read and changed")
    worklog_form: str = setting("HPD:WorkLog", help="the form of work notes")

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.login_id and not (self.first_name and self.last_name):
            yield "login_id", "set login_id, or first_name and last_name (the customer)"
        if self.web_url:
            try:
                self.web_url.format(number="INC000000000001")
            except (IndexError, KeyError, ValueError) as exc:
                yield "web_url", f"only {{number}} may be filled in ({exc!r})"


class RemedyIntegration(Integration[RemedyConfig]):
    name = "remedy"
    capabilities = ALL_CAPABILITIES
    # Remedy incident statuses; final_statuses are CLOSED whatever this map says
    status_map: ClassVar[dict[str, str]] = {
        "New": "OPEN",
        "Assigned": "OPEN",
        "In Progress": "OPEN",
        "Pending": "OPEN",
        "Resolved": "RESOLVED",
        "Closed": "CLOSED",
        "Cancelled": "CLOSED",
    }

    # -- login ---------------------------------------------------------------------------------
    def auth(self, session: HttpClient) -> None:
        """POST /api/jwt/login with the form fields; the answer is the token as plain text."""
        resp = session.request(
            "POST",
            f"{self.cfg.url}/api/jwt/login",
            data={"username": self.cfg.username, "password": self.cfg.password},
            headers={"Authorization": None},
        )
        token = resp.text.strip()
        if not token or token.startswith(("[", "{", "<")):
            raise PermanentError("remedy: the login answered no AR-JWT token")
        session.use_header("Authorization", f"AR-JWT {token}")

    def auth_expired(self, error: IntegrationError) -> bool:
        return error.status == 401  # the token ran out (or was logged out): log in again

    def logout(self, session: HttpClient) -> None:
        # every login holds an AR user session (and a license) until it ends or times out
        session.request("POST", f"{self.cfg.url}/api/jwt/logout")

    def call_budget(self) -> float:
        return 3 * super().call_budget()  # a create may take three requests

    # -- mapping ----------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        level = LEVELS.get(int(event.get("severity", 3)), 3)
        cfg = self.cfg
        fields: dict[str, Any] = {
            "Description": _text(event.get("summary"))[:SUMMARY_MAX],
            "Detailed_Decription": MappingUtils(urls).getDescription(event),  # sic: AR's name
            "Impact": IMPACTS[level],
            "Urgency": URGENCIES[level],
            "Service_Type": cfg.service_type,
            "Reported Source": cfg.reported_source,
            "Status": cfg.create_status,
        }
        if cfg.login_id:
            fields["Login_ID"] = cfg.login_id
        else:
            fields["First_Name"], fields["Last_Name"] = cfg.first_name, cfg.last_name
        fields.update(self._group())
        return fields

    def _group(self) -> dict[str, str]:
        cfg = self.cfg
        named = {
            "Assigned Support Company": cfg.assigned_support_company,
            "Assigned Support Organization": cfg.assigned_support_organization,
            "Assigned Group": cfg.assigned_group,
        }
        return {k: v for k, v in named.items() if v}

    def _state(self, status: str, assignee: str) -> str:
        if status in self.cfg.final_statuses:
            return "CLOSED"
        mapped = self.map_state(status)
        return "ASSIGNED" if mapped == "OPEN" and assignee else mapped

    def _ref(self, values: dict[str, Any]) -> RemoteIncident:
        request_id, number = _text(values.get("Request ID")), _text(values.get("Incident Number"))
        status, assignee = _text(values.get("Status")), _text(values.get("Assignee Login ID"))
        url = (
            self.cfg.web_url.format(number=number)
            if self.cfg.web_url
            else self._url(self.cfg.interface_form, request_id)
        )
        return RemoteIncident(
            remote_id=request_id,
            number=number,
            url=url,
            state=self._state(status, assignee) if status else "OPEN",
            remote_state=status,
            assignee=assignee,
        )

    # -- requests ---------------------------------------------------------------------------
    def _url(self, form: str, entry_id: str = "") -> str:
        base = f"{self.cfg.url}{API}/{quote(form, safe=':')}"
        return f"{base}/{quote(entry_id, safe='')}" if entry_id else base

    def _entries(self, qualification: str, limit: int) -> list[dict[str, Any]]:
        """The values of the interface entries matching an AR qualification."""
        params = {
            "q": qualification,
            "fields": f"values({','.join(READ_FIELDS)})",
            "limit": str(limit),
        }
        answer = self.http.json("GET", self._url(self.cfg.interface_form), params=params)
        entries = answer.get("entries") if isinstance(answer, dict) else None
        if not isinstance(entries, list):
            raise PermanentError("remedy: the answer to a query has no 'entries'")
        return [
            e["values"]
            for e in entries
            if isinstance(e, dict) and isinstance(e.get("values"), dict)
        ]

    def _one(self, field: str, value: str) -> dict[str, Any] | None:
        for values in self._entries(f"'{field}'={_literal(value)}", 10):
            if _text(values.get(field)) == value:  # compare: a qualification may match loosely
                return values
        return None

    def _put(self, ref: RemoteIncident, values: dict[str, Any]) -> None:
        body = {"values": {k: _plain(v) for k, v in values.items()}}
        self.http.request("PUT", self._url(self.cfg.interface_form, ref.remote_id), json=body)

    def _status_now(self, ref: RemoteIncident) -> str:
        values = self._one("Incident Number", ref.number)
        return _text(values.get("Status")) if values else ""

    def _created_number(self, resp: requests.Response) -> str:
        """The Incident Number from the create's answer, else from the entry at Location."""
        try:
            answer = resp.json() if resp.content else None
        except ValueError:
            answer = None
        values = answer.get("values") if isinstance(answer, dict) else None
        if isinstance(values, dict) and values.get("Incident Number"):
            return _text(values["Incident Number"])
        location = resp.headers.get("Location", "")
        if not location:
            raise PermanentError("remedy: the create answered neither a number nor a Location")
        # the server names itself in Location (behind a load balancer: another host)
        found = self.http.json("GET", self.cfg.url + urlsplit(location).path)
        values = found.get("values") if isinstance(found, dict) else None
        if not isinstance(values, dict) or not values.get("Incident Number"):
            raise PermanentError(f"remedy: the created entry {location} has no Incident Number")
        return _text(values["Incident Number"])

    # -- the contract --------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        values = {k: _plain(v) for k, v in fields.items()}
        values.update({"z1D_Action": "CREATE", KEY_FIELD: correlation_key})
        resp = self.http.request(
            "POST",
            self._url(self.cfg.create_form),
            params={"fields": "values(Incident Number)"},
            json={"values": values},
        )
        number = self._created_number(resp)
        found = self._one("Incident Number", number)
        if found is None:
            # created, not readable yet: the retry finds it by its key
            raise TransientError(f"remedy: {number} was created but is not readable yet")
        ref = self._ref(found)
        if _text(found.get(KEY_FIELD)) != correlation_key:
            # a create form that does not pass the field on: write it, or retries duplicate
            log.warning("remedy: %s lost its %s on create: writing it", number, KEY_FIELD)
            self._put(ref, {KEY_FIELD: correlation_key})
        return ref

    def find(self, correlation_key: str) -> RemoteIncident | None:
        found = self._one(KEY_FIELD, correlation_key)
        return self._ref(found) if found else None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        wanted = number.strip().upper()
        found = self._one("Incident Number", wanted) if wanted else None
        return self._ref(found) if found else None

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        if fields:
            self._put(ref, fields)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        summary = (text.strip().splitlines() or ["incman"])[0][:SUMMARY_MAX]
        values = {
            "Incident Number": ref.number,
            "Work Log Type": self.cfg.work_log_type,
            "Description": summary,
            "Detailed Description": text,
            "View Access": self.cfg.view_access,
            "Secure Work Log": "No",
        }
        self.http.request("POST", self._url(self.cfg.worklog_form), json={"values": values})

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """Assignee Login ID (Remedy fills in the name), with the configured group."""
        who = self.cfg.user_map.get(assignee, assignee)
        if not who:
            raise PermanentError(f"remedy: no assignee given for {ref.number}")
        self._put(ref, {**self._group(), "Assignee Login ID": who})

    def close(self, ref: RemoteIncident, note: str) -> None:
        """Resolved, with the Status_Reason and Resolution Remedy requires for it."""
        values = {
            "Status": "Resolved",
            "Status_Reason": self.cfg.resolve_status_reason,
            "Resolution": self.cfg.resolution or note or "Resolved by incman",
        }
        try:
            self._put(ref, values)
        except PermanentError as exc:
            if exc.status == 401:
                raise
            # a retried close may find the incident resolved, or closed for good, meanwhile
            status = self._status_now(ref)
            if status != "Resolved" and status not in self.cfg.final_statuses:
                raise
            log.info("remedy: %s is %s already (%s)", ref.number, status, exc)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        """Back to reopen_status (the Status_Reason of Resolved cleared); CannotReopen when
        the incident is in a final status."""
        try:
            self._put(ref, {"Status": self.cfg.reopen_status, "Status_Reason": None})
        except PermanentError as exc:
            status = self._status_now(ref) if exc.status != 401 else ""
            if status not in self.cfg.final_statuses:
                raise
            raise CannotReopen(
                f"remedy: {ref.number} is {status}, which is final", status=exc.status
            ) from exc
        if note:
            self.add_note(ref, note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """Many incidents per query: 'Incident Number'="A" OR 'Incident Number'="B" ..."""
        wanted = {r.number: r.remote_id for r in refs if r.number and r.remote_id}
        numbers = list(wanted)
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(numbers), STATUS_CHUNK):
            chunk = numbers[start : start + STATUS_CHUNK]
            qualification = " OR ".join(f"'Incident Number'={_literal(n)}" for n in chunk)
            for values in self._entries(qualification, len(chunk)):
                ref = self._ref(values)
                if wanted.get(ref.number) == ref.remote_id:
                    out[ref.remote_id] = ref
        return out
