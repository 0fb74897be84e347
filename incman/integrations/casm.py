"""CA Cloud Service Management: service requests over its SOAP web services.

The SaaS "Service Manager", formerly Nimsoft Service Desk. Every call is a SOAP 1.2 envelope
carrying the credentials and `extendedSettings` (answers as JSON); there is no session.
Envelopes are built with ElementTree, answers parsed with defusedxml. An answer may be
`multipart/related` with the envelope as its root part, and a failure may come back inside an
HTTP 200 result (`statusCode`, `responseStatus`, `errors`): both read here.

No correlation field is documented, so the key → ticket map is kept locally (the `records`
store incman gives the plugin) and the description carries a marker (`[incman:<key>]`) that a
retried create searches for first. (beans, fields, reads: docs/remote-systems.md)"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import defusedxml.ElementTree as SafeET
import requests

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import ALL_CAPABILITIES, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import CannotReopen, PermanentError, TransientError
from incman.integrations.http import TRANSIENT_STATUS

log = logging.getLogger(__name__)

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WRAPPERS = "http://wrappers.webservice.appservices.core.inteqnet.com"
BEANS = "http://beans.webservice.appservices.core.inteqnet.com/xsd"
ENDPOINT = "/servicedesk/webservices/ServiceRequest.ServiceRequestHttpSoap12Endpoint/"
_SRQ_FIELDS = """affected_ci_id affected_ci_identifier affected_ci_name assigned_contact_id
    assigned_group_id assigned_to_group_name assigned_to_individual_name case_id cause
    ccti_category ccti_class ccti_id ccti_item ccti_type description_long parent_row_id
    parent_ticket_identifier requested_for_name requester_name resolution row_id
    support_email_address ticket_description ticket_identifier ticket_impact ticket_impact_code
    ticket_phase ticket_priority ticket_priority_code ticket_reason_code ticket_source
    ticket_source_code ticket_status ticket_urgency ticket_urgency_code"""
SRQ_FIELDS = frozenset(_SRQ_FIELDS.split())  # the service-request bean's fields
RESULT_FIELDS = {
    "statusCode": "status_code",
    "statusMessage": "status_message",
    "responseStatus": "response_status",
    "responseText": "response_text",
}
SUMMARY_MAX = 255
# event severity → (ticket_impact, ticket_urgency); the service derives the priority
SEVERITY_LEVELS = {5: ("High", "Critical"), 4: ("High", "High"), 3: ("Medium", "Medium")}
for _prefix, _uri in (("soap", SOAP12), ("wrap", WRAPPERS), ("bean", BEANS)):
    ET.register_namespace(_prefix, _uri)


def marker(correlation_key: str) -> str:
    """What the description carries so that a retried create can find the ticket."""
    return f"[incman:{correlation_key}]"


class TicketMap(Protocol):
    """Where the plugin keeps key → ticket (incman.store.ticket_map in incman)."""

    def remember(self, correlation_key: str, remote_id: str, number: str) -> None: ...

    def lookup(self, correlation_key: str) -> tuple[str, str] | None: ...


@dataclass
class Result:
    """The default service response every operation answers with."""

    status_code: str = ""
    status_message: str = ""
    response_status: str = ""
    response_text: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        code = int(self.status_code) if self.status_code.isdigit() else 0
        return bool(self.errors) or self.response_status.upper() == "FAILURE" or code >= 400

    def data(self) -> Any:
        """The JSON of `responseText`, a bean wrapped in one named object unwrapped."""
        try:
            value = json.loads(self.response_text) if self.response_text.strip() else {}
        except ValueError as exc:
            raise PermanentError("casm: responseText is not JSON") from exc
        if isinstance(value, dict) and len(value) == 1 and "row_id" not in value:
            inner = next(iter(value.values()))
            if isinstance(inner, dict | list):
                return inner
        return value


def envelope(operation: str, credentials: tuple[str, str], parts: dict[str, Any]) -> bytes:
    """A SOAP 1.2 request: credentials, extendedSettings, then `parts` in order (a bean as
    a mapping, its fields in the schema's order, or a text element)."""
    root = ET.Element(f"{{{SOAP12}}}Envelope")
    ET.SubElement(root, f"{{{SOAP12}}}Header")
    body = ET.SubElement(ET.SubElement(root, f"{{{SOAP12}}}Body"), f"{{{WRAPPERS}}}{operation}")
    creds = ET.SubElement(body, f"{{{WRAPPERS}}}credentials")
    ET.SubElement(creds, f"{{{BEANS}}}userName").text = credentials[0]
    ET.SubElement(creds, f"{{{BEANS}}}userPassword").text = credentials[1]
    settings = ET.SubElement(body, f"{{{WRAPPERS}}}extendedSettings")
    ET.SubElement(settings, f"{{{BEANS}}}responseFormat").text = "JSON"
    for name, value in parts.items():
        part = ET.SubElement(body, f"{{{WRAPPERS}}}{name}")
        if isinstance(value, dict):
            for key in sorted(value):  # the beans' sequences are in alphabetical order
                ET.SubElement(part, f"{{{BEANS}}}{key}").text = str(value[key])
        else:
            part.text = str(value)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def soap_payload(resp: requests.Response) -> bytes:
    """The envelope of an answer: the body, or the root part of a multipart/related one."""
    content_type = resp.headers.get("Content-Type", "")
    if "multipart/related" not in content_type.lower():
        return resp.content
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + resp.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = [p for p in message.iter_parts()] if message.is_multipart() else []
    if not parts:
        raise PermanentError("casm: a multipart/related answer without parts")
    start = str(message.get_param("start", "", header="content-type") or "")
    root = next((p for p in parts if start and p.get("Content-ID", "") == start), parts[0])
    payload = root.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_result(payload: bytes, operation: str) -> Result:
    """The result element of `<operation>Response`; a SOAP Fault as PermanentError."""
    try:
        root = SafeET.fromstring(payload)
    except (SafeET.ParseError, ValueError) as exc:
        raise PermanentError(f"casm: {operation}: the answer is not XML: {exc}") from exc
    body = root.find(f"{{{SOAP12}}}Body")
    if _local(root.tag) != "Envelope" or body is None or not len(body):
        raise PermanentError(f"casm: {operation}: the answer is not a SOAP 1.2 envelope")
    answer = body[0]
    if _local(answer.tag) == "Fault":
        reason = " ".join(t.strip() for t in answer.itertext() if t.strip())
        raise PermanentError(f"casm: {operation}: SOAP fault: {reason}")
    returned = next((e for e in answer if _local(e.tag) == "return"), answer)
    result = Result()
    for child in returned:
        name, value = _local(child.tag), (child.text or "").strip()
        if name == "errors" and value:
            result.errors.append(value)
        elif name in RESULT_FIELDS:
            setattr(result, RESULT_FIELDS[name], value)
    return result


class CasmConfig(IntegrationConfig):
    url: str = url_setting(
        required=True, help="the tenant's address, e.g. https://sm1s.saas.ca.com"
    )
    username: str = setting("", required=True, help="a user with the Web Service license")
    password: str = setting("", required=True, secret=True, help="its password")
    requester: str = setting("", required=True, help="requester_name of new service requests")
    group: str = setting("", help="assigned_to_group_name of new requests and assignments")
    ccti_class: str = setting("", help="classification (class) of new requests")
    ccti_category: str = setting("", help="its category")
    ccti_type: str = setting("", help="its type")
    ccti_item: str = setting("", help="its item")
    resolve_status: str = setting("Resolved", help="the ticket_status a close sets")
    reopen_status: str = setting("Active", help="the ticket_status a re-open sets")
    final_statuses: tuple[str, ...] = setting(
        ("Closed", "Cancelled"), required=True, help="statuses closed for good (no re-open)"
    )
    note_view: str = setting(
        "Internal", choices=("Internal", "Public"), help="work_view_type of worklogs"
    )
    ticket_url: str = setting("", help="link of a ticket, with {id} and {number}; empty: none")
    user_map: dict[str, str] = setting({}, help="incman user → assigned_to_individual_name")


class CasmIntegration(Integration[CasmConfig]):
    name = "casm"
    capabilities = ALL_CAPABILITIES
    # ticket_status; "final_statuses" are CLOSED whatever this map says
    status_map: ClassVar[dict[str, str]] = {
        "New": "OPEN",
        "Active": "OPEN",
        "Queued": "OPEN",
        "Pending": "OPEN",
        "Resolved": "RESOLVED",
        "Closed": "CLOSED",
        "Cancelled": "CLOSED",
    }

    @property
    def tickets(self) -> TicketMap | None:
        return self.records  # type: ignore[no-any-return]

    def call_budget(self) -> float:
        return 2 * super().call_budget()  # a create may search first

    # -- transport -------------------------------------------------------------------------
    def _call(self, operation: str, parts: dict[str, Any]) -> Result:
        body = envelope(operation, (self.cfg.username, self.cfg.password), parts)
        headers = {
            "Content-Type": f'application/soap+xml;charset=UTF-8;action="urn:{operation}"',
            "SOAPAction": f"urn:{operation}",
        }
        resp = self.http.request("POST", self.cfg.url + ENDPOINT, data=body, headers=headers)
        result = parse_result(soap_payload(resp), operation)
        if result.failed:
            code = int(result.status_code) if result.status_code.isdigit() else None
            reason = "; ".join(result.errors) or result.status_message or result.response_status
            message = f"casm: {operation} failed ({result.status_code}): {reason}"
            if code in TRANSIENT_STATUS:
                raise TransientError(message, status=code)
            raise PermanentError(message, status=code)
        return result

    def _bean_call(self, operation: str, bean: dict[str, Any]) -> dict[str, Any]:
        data = self._call(operation, {"srqBean": bean}).data()
        return data if isinstance(data, dict) else {}

    def _list(self, search: str) -> list[dict[str, Any]]:
        data = self._call("listServiceRequests", {"searchText": search}).data()
        rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        return [r for r in rows if isinstance(r, dict) and r.get("row_id")]

    # -- mapping ---------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        impact, urgency = SEVERITY_LEVELS.get(int(event.get("severity", 3)), ("Low", "Low"))
        fields = {
            "ticket_description": str(event.get("summary") or "")[:SUMMARY_MAX],
            "description_long": MappingUtils(urls).getDescription(event),
            "ticket_impact": impact,
            "ticket_urgency": urgency,
            "requester_name": self.cfg.requester,
        }
        optional = {
            "assigned_to_group_name": self.cfg.group,
            "ccti_class": self.cfg.ccti_class,
            "ccti_category": self.cfg.ccti_category,
            "ccti_type": self.cfg.ccti_type,
            "ccti_item": self.cfg.ccti_item,
        }
        return {**fields, **{k: v for k, v in optional.items() if v}}

    def _ref(self, row_id: str, number: str, bean: dict[str, Any] | None = None) -> RemoteIncident:
        bean = bean or {}
        status = str(bean.get("ticket_status") or "")
        assignee = str(bean.get("assigned_to_individual_name") or "")
        state = "OPEN"
        if status in self.cfg.final_statuses:
            state = "CLOSED"
        elif status:
            state = self.map_state(status)
            state = "ASSIGNED" if state == "OPEN" and assignee else state
        template = self.cfg.ticket_url
        return RemoteIncident(
            remote_id=row_id,
            number=number,
            url=template.format(id=row_id, number=number) if template else "",
            state=state,
            remote_state=status,
            assignee=assignee,
        )

    def _bean_ref(self, bean: dict[str, Any]) -> RemoteIncident:
        return self._ref(
            str(bean.get("row_id") or ""), str(bean.get("ticket_identifier") or ""), bean
        )

    @staticmethod
    def _fields(fields: dict[str, Any]) -> dict[str, str]:
        unknown = sorted(set(fields) - SRQ_FIELDS)
        if unknown:
            raise PermanentError(f"casm: not service-request fields: {', '.join(unknown)}")
        return {k: "" if v is None else str(v) for k, v in fields.items()}

    def _update(self, ref: RemoteIncident, fields: dict[str, Any]) -> dict[str, Any]:
        bean = {**self._fields(fields), "row_id": ref.remote_id, "ticket_identifier": ref.number}
        return self._bean_call("updateServiceRequest", bean)

    def _current(self, ref: RemoteIncident) -> RemoteIncident:
        return self._bean_ref(self._bean_call("getServiceRequest", {"row_id": ref.remote_id}))

    # -- the contract ------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        bean = self._fields(fields)
        text = bean.get("description_long", "")
        bean["description_long"] = f"{text}\n\n{marker(correlation_key)}".lstrip()
        ref = self._bean_ref(self._bean_call("logServiceRequest", bean))
        if not ref.remote_id:
            raise PermanentError("casm: logServiceRequest answered no row_id")
        if self.tickets is not None:
            self.tickets.remember(correlation_key, ref.remote_id, ref.number)
        return ref

    def find(self, correlation_key: str) -> RemoteIncident | None:
        """The local map first; else a search for the marker (the answer of a create may have
        been lost after the service logged the request)."""
        known = self.tickets.lookup(correlation_key) if self.tickets is not None else None
        if known is not None:
            return self._ref(*known)
        wanted = marker(correlation_key)
        for bean in self._list(wanted.strip("[]")):
            if wanted in str(bean.get("description_long") or ""):
                ref = self._bean_ref(bean)
                if self.tickets is not None:
                    self.tickets.remember(correlation_key, ref.remote_id, ref.number)
                return ref
        return None

    def find_by_number(self, number: str) -> RemoteIncident | None:
        wanted = number.strip()
        for bean in self._list(wanted):
            if str(bean.get("ticket_identifier") or "") == wanted:
                return self._bean_ref(bean)
        return None

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        if fields:
            self._update(ref, fields)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        worklog = {
            "row_id": ref.remote_id,
            "ticket_identifier": ref.number,
            "work_description": text,
            "work_view_type": self.cfg.note_view,
        }
        self._call("addWorklog", {"workglogBean": worklog})

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        who = self.cfg.user_map.get(assignee, assignee)
        if not who:
            raise PermanentError(f"casm: no assignee given for {ref.number}")
        fields = {"assigned_to_individual_name": who}
        if self.cfg.group:
            fields["assigned_to_group_name"] = self.cfg.group
        self._update(ref, fields)

    def close(self, ref: RemoteIncident, note: str) -> None:
        fields = {"ticket_status": self.cfg.resolve_status, "resolution": note or "Resolved"}
        try:
            self._update(ref, fields)
        except PermanentError:
            # a retried close may find the request resolved or closed already
            status = self._current(ref).remote_state
            if status != self.cfg.resolve_status and status not in self.cfg.final_statuses:
                raise
            log.info("casm: %s is already %s", ref.number, status)

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        """Back to reopen_status; CannotReopen when the request is in a final status."""
        status = self._current(ref).remote_state
        if status in self.cfg.final_statuses:
            raise CannotReopen(f"casm: {ref.number} is {status} (final)")
        self._update(ref, {"ticket_status": self.cfg.reopen_status})
        if note:
            self.add_note(ref, note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        """One get per request: the service has no read of many by id."""
        out: dict[str, RemoteIncident] = {}
        for ref in {r.remote_id: r for r in refs if r.remote_id}.values():
            try:
                fresh = self._current(ref)
            except PermanentError as exc:
                if exc.status != 404:
                    raise
                continue  # unknown there: left out
            if fresh.remote_id == ref.remote_id:
                out[ref.remote_id] = fresh
        return out
