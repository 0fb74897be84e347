"""A CA Cloud Service Management simulator: the ServiceRequest SOAP web service.

It serves it as the reference describes it (remote-apis.md, "CA Cloud Service Management").

Strict where the real service is: SOAP 1.2 envelopes only (`http://www.w3.org/2003/05/
soap-envelope`), content type `application/soap+xml` whose `action` names the operation (and
a `SOAPAction` header, when sent, naming the same), the operation element in the wrappers
namespace and the bean fields in the beans namespace, `credentials` and `extendedSettings`
first, only known bean fields; a malformed request is a SOAP Sender fault. Credentials travel
in every envelope (no session). Answers are `multipart/related` with the envelope as the root
part (`multipart=False` for plain ones), and failures such as wrong credentials, an unknown
ticket or a refused value come back inside an HTTP 200 result (`statusCode`,
`responseStatus`, `errors`), as the real service reports them."""

from __future__ import annotations

import json
import re
import secrets
import time
import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET

from incman.integrations.casm import BEANS, SOAP12, SRQ_FIELDS, WRAPPERS
from incman.testing.simbase import SimApp, SimError, SimRequest, SimResponse, Ticket

PATHS = tuple(
    f"/servicedesk/webservices/ServiceRequest.ServiceRequestHttpSoap{v}Endpoint" for v in (11, 12)
)
# operation → its third part; the get and list operations' names are unverified (the service
# documents a get call by row id and a list call, not their names for service requests)
OPERATIONS = {
    "logServiceRequest": "srqBean",
    "updateServiceRequest": "srqBean",
    "addWorklog": "workglogBean",
    "getServiceRequest": "srqBean",
    "listServiceRequests": "searchText",
}
_WORKLOG_FIELDS = """item_id row_id ticket_identifier ticket_type work_actual_date work_created_by
    work_created_by_contact_id work_created_date work_description work_modified_by
    work_modified_by_contact_id work_modified_date work_time_spent work_type work_type_code
    work_view_type"""
WORKLOG_FIELDS = frozenset(_WORKLOG_FIELDS.split())
# unverified: the ticket statuses, impact/urgency names, the contacts and groups checked, and
# the formats of row_id and ticket_identifier (the bean fields themselves are confirmed)
STATUSES = ("New", "Active", "Queued", "Pending", "Resolved", "Closed", "Cancelled")
FINAL = ("Closed", "Cancelled")
LEVELS = ("Critical", "High", "Medium", "Low")
PEOPLE = ("incman", "oncall1", "tester", "Service Desk Agent")
GROUPS = ("Service Desk", "Database Team")
MARKER = re.compile(r"\[([^\[\]\s]+)\]")
RESULT = ("errors", "notes", "responseBean", "responseFormat", "responseStatus", "responseText")


class SoapFault(Exception):
    """A malformed request: answered with a SOAP 1.2 Sender fault."""


def _local(tag: str) -> tuple[str, str]:
    ns, _, name = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return ns, name


def _fault(status: int, reason: str) -> SimResponse:
    code = "soap:Receiver" if status >= 500 else "soap:Sender"
    root = ET.Element(f"{{{SOAP12}}}Envelope")
    fault = ET.SubElement(ET.SubElement(root, f"{{{SOAP12}}}Body"), f"{{{SOAP12}}}Fault")
    ET.SubElement(ET.SubElement(fault, f"{{{SOAP12}}}Code"), f"{{{SOAP12}}}Value").text = code
    text = ET.SubElement(ET.SubElement(fault, f"{{{SOAP12}}}Reason"), f"{{{SOAP12}}}Text")
    text.text = reason
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    # unverified: HTTP 400 for Sender faults follows the SOAP 1.2 HTTP binding (Axis2 may 500)
    return SimResponse(
        status,
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
        raw=ET.tostring(root, encoding="utf-8", xml_declaration=True),
    )


class Failure(Exception):
    """A failure the service reports inside an HTTP 200 result."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _children(element: Any, namespace: str, allowed: frozenset[str]) -> dict[str, str]:
    """The text children of a bean: in `namespace`, known, once each, in schema order."""
    names: list[str] = []
    values: dict[str, str] = {}
    for child in element:
        ns, name = _local(child.tag)
        if ns != namespace or name not in allowed or name in values:
            raise SoapFault(f"Unexpected subelement {child.tag}")
        names.append(name)
        values[name] = (child.text or "").strip()
    # unverified: the order the service's data binding insists on (alphabetical, as the
    # beans of the open-source client list them)
    if names != sorted(names):
        raise SoapFault(f"Unexpected subelement {{{namespace}}}{names[0]}: out of order")
    return values


class CasmSim(SimApp):
    """Options: the web-service `username`/`password`, `multipart` answers (default on)."""

    name = "casm"

    def __init__(
        self,
        username: str = "incman@example.com",
        password: str = "casm-secret",
        multipart: bool | str = True,
    ) -> None:
        super().__init__()
        self.username, self.password = str(username), str(password)
        self.multipart = str(multipart).lower() in ("true", "1", "yes", "on")
        self.reset()

    def reset(self) -> None:
        self.srqs: dict[str, dict[str, str]] = {}  # row_id → bean
        self.worklogs: dict[str, list[dict[str, str]]] = {}
        self.next_row, self.next_number = 5000001, 100001

    def authenticate(self, req: SimRequest) -> bool:
        return True  # credentials travel inside every envelope

    def error(self, status: int, message: str) -> SimResponse:
        return _fault(status, message)

    def request_path(self, req: SimRequest) -> str:
        """The URL path and the operation (`.../logServiceRequest`): faults can aim at one."""
        action = re.search(r'action="?urn:([A-Za-z]+)', req.headers.get("content-type", ""))
        return f"{req.path.rstrip('/')}/{action[1]}" if action else req.path

    # -- the envelope ------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> SimResponse:
        if req.path.rstrip("/") not in PATHS:
            raise SimError(404, None, {"Content-Type": "text/html"})
        if req.method != "POST":
            raise SimError(405, None, {"Allow": "POST"})
        try:
            operation, parts = self._read(req)
        except SoapFault as exc:
            return _fault(400, str(exc))
        try:
            self._login(parts["credentials"])
            answer = self._operate(operation, parts)
            status: tuple[str, str, str, list[str]] = ("SUCCESS", "200", "OK", [])
        except Failure as exc:
            answer, status = None, ("FAILURE", str(exc.code), "Failed", [str(exc)])
        return self._answer(operation, parts["format"], answer, *status)

    def _read(self, req: SimRequest) -> tuple[str, dict[str, Any]]:
        content_type = req.headers.get("content-type", "")
        action = re.search(r'action="?urn:([A-Za-z]+)"?', content_type)
        if not content_type.lower().startswith("application/soap+xml") or not action:
            raise SoapFault(f"Content type {content_type!r}: SOAP 1.2 with action expected")
        soap_action = req.headers.get("soapaction", "").strip('"')
        if soap_action and soap_action != f"urn:{action[1]}":
            raise SoapFault(f"SOAPAction {soap_action} does not match action urn:{action[1]}")
        try:
            root = SafeET.fromstring(req.raw or b"")
        except (SafeET.ParseError, ValueError) as exc:
            raise SoapFault(f"The request is not well-formed XML: {exc}") from None
        if root.tag != f"{{{SOAP12}}}Envelope":
            raise SoapFault(f"{root.tag}: a SOAP 1.2 Envelope expected (VersionMismatch)")
        body = root.find(f"{{{SOAP12}}}Body")
        if body is None or len(body) != 1:
            raise SoapFault("The Body must hold exactly one operation")
        ns, operation = _local(body[0].tag)
        if ns != WRAPPERS or operation not in OPERATIONS or operation != action[1]:
            raise SoapFault(
                f"The endpoint reference (EPR) for the Operation not found: {ns}:{operation}"
            )
        return operation, self._parts(operation, body[0])

    @staticmethod
    def _parts(operation: str, element: Any) -> dict[str, Any]:
        third = OPERATIONS[operation]
        names = [_local(c.tag) for c in element]
        if names != [(WRAPPERS, "credentials"), (WRAPPERS, "extendedSettings"), (WRAPPERS, third)]:
            raise SoapFault(f"{operation} takes credentials, extendedSettings and {third}")
        creds = _children(element[0], BEANS, frozenset({"userName", "userPassword"}))
        settings = _children(element[1], BEANS, frozenset({"responseFormat"}))
        fmt = settings.get("responseFormat", "JSON").upper()
        if fmt not in ("JSON", "XML"):  # unverified: a JavaBean format is documented, not taken
            raise SoapFault(f"responseFormat {fmt}: JSON or XML")
        if third == "searchText":
            value: Any = (element[2].text or "").strip()
        else:
            allowed = SRQ_FIELDS if third == "srqBean" else WORKLOG_FIELDS
            value = _children(element[2], BEANS, allowed)
        return {"credentials": creds, "format": fmt, "bean": value}

    def _login(self, creds: dict[str, str]) -> None:
        if (creds.get("userName"), creds.get("userPassword")) != (self.username, self.password):
            raise Failure(401, "Invalid user name or password")  # unverified: the wording

    # unverified: the result element's name (`return`), its children's namespace and order,
    # the values of statusCode and responseStatus; a JSON responseText holds the bare bean
    # (a list for listServiceRequests)
    def _answer(
        self,
        operation: str,
        fmt: str,
        answer: Any,
        status: str,
        code: str,
        text: str,
        errors: list[str],
    ) -> SimResponse:
        root = ET.Element(f"{{{SOAP12}}}Envelope")
        body = ET.SubElement(root, f"{{{SOAP12}}}Body")
        result = ET.SubElement(
            ET.SubElement(body, f"{{{WRAPPERS}}}{operation}Response"), f"{{{WRAPPERS}}}return"
        )
        values = {
            "responseFormat": fmt,
            "responseStatus": status,
            "responseText": self._format(answer, fmt) if answer is not None else "",
            "statusCode": code,
            "statusMessage": text,
        }
        for name in (*RESULT, "statusCode", "statusMessage", "warnings"):
            for value in errors if name == "errors" else [values.get(name, "")]:
                ET.SubElement(result, f"{{{BEANS}}}{name}").text = value
        xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        if not self.multipart:
            return SimResponse(
                200, headers={"Content-Type": "application/soap+xml; charset=UTF-8"}, raw=xml
            )
        return self._multipart(operation, xml)

    @staticmethod
    def _multipart(operation: str, xml: bytes) -> SimResponse:
        # unverified: the exact MIME headers (Axis2's MTOM packaging is assumed)
        boundary = f"MIMEBoundary_{secrets.token_hex(24)}"
        start = f"<0.urn:uuid:{secrets.token_hex(16).upper()}@apache.org>"
        head = (
            f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
            f'type="application/soap+xml"\r\nContent-Transfer-Encoding: binary\r\n'
            f"Content-ID: {start}\r\n\r\n"
        )
        raw = head.encode() + xml + f"\r\n--{boundary}--\r\n".encode()
        content_type = (
            f'multipart/related; boundary={boundary}; type="application/xop+xml"; '
            f'start="{start}"; start-info="application/soap+xml"; '
            f'action="urn:{operation}Response"'
        )
        return SimResponse(200, headers={"Content-Type": content_type}, raw=raw)

    @staticmethod
    def _format(answer: Any, fmt: str) -> str:
        if fmt == "JSON":
            return json.dumps(answer)
        root = ET.Element("srqBeans" if isinstance(answer, list) else "srqBean")
        for bean in answer if isinstance(answer, list) else [answer]:
            parent = ET.SubElement(root, "srqBean") if isinstance(answer, list) else root
            for key, value in bean.items():
                ET.SubElement(parent, key).text = value
        return ET.tostring(root, encoding="unicode")

    # -- operations --------------------------------------------------------------------------
    def _operate(self, operation: str, parts: dict[str, Any]) -> Any:
        bean = parts["bean"]
        if operation == "logServiceRequest":
            return self._log(bean)
        if operation == "listServiceRequests":
            # unverified: what the search text is matched against (summary, description and
            # number here, as a substring)
            needle = str(bean).lower()
            return [
                dict(r)
                for r in self.srqs.values()
                if needle
                and any(
                    needle in r[f].lower()
                    for f in ("ticket_description", "description_long", "ticket_identifier")
                )
            ][:100]
        record = self._record(bean)
        if operation == "getServiceRequest":
            return dict(record)
        if operation == "addWorklog":
            return self._worklog(record, bean)
        return self._update(record, bean)

    def _record(self, bean: dict[str, str]) -> dict[str, str]:
        row_id, number = bean.get("row_id", ""), bean.get("ticket_identifier", "")
        record = (
            self.srqs.get(row_id)
            if row_id
            else next(
                (r for r in self.srqs.values() if number and r["ticket_identifier"] == number), None
            )
        )
        if record is None or (number and record["ticket_identifier"] != number):
            raise Failure(404, f"Service request {row_id or number} not found")
        return record

    def _check(self, bean: dict[str, str]) -> None:
        for name in ("ticket_impact", "ticket_urgency"):
            if bean.get(name) and bean[name] not in LEVELS:
                raise Failure(400, f"Invalid value {bean[name]!r} for {name}")
        if bean.get("ticket_status") and bean["ticket_status"] not in STATUSES:
            raise Failure(400, f"Invalid ticket status {bean['ticket_status']!r}")
        for name, known in (("assigned_to_individual_name", PEOPLE), ("requester_name", PEOPLE)):
            if bean.get(name) and bean[name] not in (*known, self.username):
                raise Failure(400, f"No contact named {bean[name]!r} ({name})")
        if bean.get("assigned_to_group_name") and bean["assigned_to_group_name"] not in GROUPS:
            raise Failure(400, f"No group named {bean['assigned_to_group_name']!r}")

    def _log(self, bean: dict[str, str]) -> dict[str, str]:
        if not bean.get("ticket_description"):
            raise Failure(400, "ticket_description is required")
        if not bean.get("requester_name"):
            raise Failure(400, "requester_name is required")  # unverified: mandatory fields
        self._check(bean)
        record = {f: "" for f in sorted(SRQ_FIELDS)}
        record.update({k: v for k, v in bean.items() if k not in ("row_id", "ticket_identifier")})
        record.update(
            row_id=str(self.next_row),
            ticket_identifier=str(self.next_number),
            case_id=str(self.next_number),
            ticket_status="New",
            ticket_priority=self._priority(record),
        )
        self.next_row += 1
        self.next_number += 1
        self.srqs[record["row_id"]] = record
        self.worklogs[record["row_id"]] = []
        return dict(record)

    @staticmethod
    def _priority(record: dict[str, str]) -> str:
        # unverified: that the service derives the priority from impact and urgency
        levels = [
            LEVELS.index(record[f]) if record[f] in LEVELS else 3
            for f in ("ticket_impact", "ticket_urgency")
        ]
        return LEVELS[min(3, sum(levels) // 2)]

    def _update(self, record: dict[str, str], bean: dict[str, str]) -> dict[str, str]:
        self._check(bean)
        if record["ticket_status"] in FINAL:
            # unverified: how the service refuses changes to a closed request
            raise Failure(
                400, f"Service request {record['ticket_identifier']} is {record['ticket_status']}"
            )
        changes = {k: v for k, v in bean.items() if v and k not in ("row_id", "ticket_identifier")}
        status = changes.get("ticket_status", record["ticket_status"])
        if status in ("Resolved", "Closed") and not (
            changes.get("resolution") or record["resolution"]
        ):
            raise Failure(400, "A resolution is required to resolve or close")  # unverified
        record.update(changes)
        record["ticket_priority"] = self._priority(record)
        return dict(record)

    def _worklog(self, record: dict[str, str], bean: dict[str, str]) -> dict[str, str]:
        if not bean.get("work_description"):
            raise Failure(400, "work_description is required")
        entry = {**bean, "row_id": record["row_id"], "work_created_date": str(int(time.time()))}
        self.worklogs[record["row_id"]].append(entry)
        return entry

    # -- control -----------------------------------------------------------------------------
    def act(self, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """As a person in the web UI: any bean field (`ticket_status`, ...) and a `note`."""
        record = self.srqs.get(record_id) or next(
            (r for r in self.srqs.values() if r["ticket_identifier"] == record_id), None
        )
        if record is None:
            raise SimError(404, {"error": f"no service request {record_id}"})
        note = changes.pop("note", None)
        unknown = set(changes) - SRQ_FIELDS
        if unknown:
            raise SimError(400, {"error": f"unknown fields {sorted(unknown)}"})
        record.update({k: str(v) for k, v in changes.items()})
        if note:
            self.worklogs[record["row_id"]].append({"work_description": str(note)})
        return self._dump(record)

    def _dump(self, record: dict[str, str]) -> dict[str, Any]:
        return {**record, "worklogs": list(self.worklogs.get(record["row_id"], []))}

    def tickets(self) -> list[Ticket]:
        return [
            Ticket(
                id=r["row_id"],
                number=r["ticket_identifier"],
                keys=MARKER.findall(r["description_long"]),
                state=r["ticket_status"],
                assignee=r["assigned_to_individual_name"],
                notes=[w["work_description"] for w in self.worklogs[r["row_id"]]],
            )
            for r in self.srqs.values()
        ]

    def state(self) -> dict[str, Any]:
        return {"requests": [self._dump(r) for r in self.srqs.values()]}

    def describe(self) -> str:
        return (
            f"CA Cloud Service Management simulator at {self.base_url} ({PATHS[1]}/); "
            f"credentials {self.username}/{self.password}; contacts: {', '.join(PEOPLE)}"
        )
