"""CA Cloud Service Management's pure parts: envelopes built with ElementTree, answers
(multipart/related, failures inside a 200, SOAP faults, hostile XML), the marker. The plugin
against the simulator: tests/integration/test_casm.py and the contract table."""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
import requests

from incman.integrations.casm import (
    BEANS,
    SOAP12,
    WRAPPERS,
    CasmIntegration,
    Result,
    envelope,
    marker,
    parse_result,
    soap_payload,
)
from incman.integrations.errors import ConfigurationError, PermanentError

CONFIG = {"url": "https://sm", "username": "u", "password": "p", "requester": "incman"}


def answer(operation: str, **values: str) -> bytes:
    fields = "".join(f"<ax:{k}>{v}</ax:{k}>" for k, v in values.items())
    return (
        f'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="{SOAP12}"><soapenv:Body>'
        f'<ns:{operation}Response xmlns:ns="{WRAPPERS}"><ns:return xmlns:ax="{BEANS}">'
        f"{fields}</ns:return></ns:{operation}Response></soapenv:Body></soapenv:Envelope>"
    ).encode()


def response(body: bytes, content_type: str) -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp._content = 200, body
    resp.headers["Content-Type"] = content_type
    return resp


def test_an_envelope_carries_credentials_settings_and_the_bean_in_order() -> None:
    hostile = "</wrap:srqBean><x>&amp; ]]> \u00e9"
    raw = envelope(
        "logServiceRequest",
        ("user", "pa<ss"),
        {"srqBean": {"ticket_description": hostile, "description_long": "d"}},
    )
    root = SafeET.fromstring(raw)
    assert root.tag == f"{{{SOAP12}}}Envelope"
    [operation] = root.find(f"{{{SOAP12}}}Body")
    assert operation.tag == f"{{{WRAPPERS}}}logServiceRequest"
    assert [c.tag for c in operation] == [
        f"{{{WRAPPERS}}}credentials",
        f"{{{WRAPPERS}}}extendedSettings",
        f"{{{WRAPPERS}}}srqBean",
    ]
    creds = {c.tag: c.text for c in operation[0]}
    assert creds == {f"{{{BEANS}}}userName": "user", f"{{{BEANS}}}userPassword": "pa<ss"}
    assert operation[1][0].text == "JSON"
    bean = [(c.tag, c.text) for c in operation[2]]
    assert bean == [  # user text stays text; fields in the schema's (alphabetical) order
        (f"{{{BEANS}}}description_long", "d"),
        (f"{{{BEANS}}}ticket_description", hostile),
    ]


def test_a_multipart_related_answer_gives_its_root_part() -> None:
    xml = answer("addWorklog", statusCode="200")
    body = (
        b"--MIMEBoundary_1\r\nContent-Type: text/plain\r\nContent-ID: <other>\r\n\r\nnot it\r\n"
        b"--MIMEBoundary_1\r\nContent-Type: application/xop+xml; charset=UTF-8; "
        b'type="application/soap+xml"\r\nContent-Transfer-Encoding: binary\r\n'
        b"Content-ID: <0.urn:uuid:AB@apache.org>\r\n\r\n" + xml + b"\r\n--MIMEBoundary_1--\r\n"
    )
    content_type = (
        'multipart/related; boundary=MIMEBoundary_1; type="application/xop+xml"; '
        'start="<0.urn:uuid:AB@apache.org>"; start-info="application/soap+xml"'
    )
    assert soap_payload(response(body, content_type)).strip() == xml
    assert soap_payload(response(xml, "application/soap+xml")) == xml


def test_results_succeed_or_fail_inside_the_200() -> None:
    ok = parse_result(
        answer(
            "logServiceRequest",
            responseStatus="SUCCESS",
            statusCode="200",
            responseText='{"row_id": "5", "ticket_identifier": "100"}',
            errors="",
        ),
        "logServiceRequest",
    )
    assert not ok.failed and ok.data() == {"row_id": "5", "ticket_identifier": "100"}
    bad = parse_result(
        answer("updateServiceRequest", responseStatus="FAILURE", statusCode="404", errors="gone"),
        "updateServiceRequest",
    )
    assert bad.failed and bad.errors == ["gone"]
    assert Result(errors=["x"]).failed and Result(status_code="500").failed
    assert not Result(status_code="200", response_status="SUCCESS").failed


def test_response_text_unwraps_one_named_bean() -> None:
    assert Result(response_text='{"srqBean": {"row_id": "5"}}').data() == {"row_id": "5"}
    assert Result(response_text='[{"row_id": "5"}]').data() == [{"row_id": "5"}]
    assert Result(response_text="").data() == {}
    with pytest.raises(PermanentError, match="not JSON"):
        Result(response_text="<srqBean/>").data()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            f'<e:Envelope xmlns:e="{SOAP12}"><e:Body><e:Fault><e:Code><e:Value>e:Sender'
            "</e:Value></e:Code><e:Reason><e:Text>Unexpected subelement</e:Text></e:Reason>"
            "</e:Fault></e:Body></e:Envelope>",
            "SOAP fault: e:Sender Unexpected subelement",
        ),
        ("<html>proxy error</html>", "not a SOAP 1.2 envelope"),
        ("not xml", "not XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<b>&b;</b>",
            "not XML",  # entities are refused, never expanded
        ),
    ],
)
def test_faults_and_odd_answers_are_permanent_errors(payload: str, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason):
        parse_result(payload.encode(), "addWorklog")


def test_the_marker_and_default_fields() -> None:
    assert marker("abc") == "[incman:abc]"
    plugin = CasmIntegration({**CONFIG, "group": "Service Desk", "ccti_class": "Monitoring"})
    fields = plugin.default_fields({"severity": 5, "summary": "Disk full"}, None, {})
    assert (fields["ticket_impact"], fields["ticket_urgency"]) == ("High", "Critical")
    assert (fields["requester_name"], fields["assigned_to_group_name"]) == (
        "incman",
        "Service Desk",
    )
    assert fields["ccti_class"] == "Monitoring" and "ccti_item" not in fields


def test_fields_that_are_not_the_beans_are_refused_before_sending() -> None:
    plugin = CasmIntegration(CONFIG)
    with pytest.raises(PermanentError, match="not service-request fields: summary"):
        plugin.create({"summary": "x"}, "key")


def test_states() -> None:
    plugin = CasmIntegration(CONFIG)
    bean: dict[str, Any] = {"row_id": "5", "ticket_identifier": "100", "ticket_status": "New"}
    assert plugin._bean_ref(bean).state == "OPEN"
    bean["assigned_to_individual_name"] = "oncall1"
    assert plugin._bean_ref(bean).state == "ASSIGNED"
    assert plugin._bean_ref({**bean, "ticket_status": "Resolved"}).state == "RESOLVED"
    assert plugin._bean_ref({**bean, "ticket_status": "Closed"}).state == "CLOSED"
    assert plugin._bean_ref(bean).url == ""
    linked = CasmIntegration({**CONFIG, "ticket_url": "https://sm/t/{id}?n={number}"})
    assert linked._bean_ref(bean).url == "https://sm/t/5?n=100"


def test_the_config_names_every_problem() -> None:
    with pytest.raises(ConfigurationError) as caught:
        CasmIntegration({"url": "https://sm", "note_view": "Secret"})
    message = str(caught.value)
    for key in ("username", "password", "requester"):
        assert f"config.{key}: is required" in message
    assert "config.note_view: must be one of Internal, Public" in message
