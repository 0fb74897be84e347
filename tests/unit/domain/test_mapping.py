"""Field mapping: grammar, substitutions, contexts, removal and the sandbox."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from incman.domain.event import SEVERITY_NAMES
from incman.domain.mapping import MappingError, apply_field_mapping, parse_field_mapping
from incman.domain.mapping_context import REMOVE_FIELD, DmdView, build_context

EVENT: dict[str, Any] = {
    "eventId": "ev-1",
    "dedupid": "web01|eth0|/Net/Link|k|4",
    "device": "web01",
    "component": "eth0",
    "eventClass": "/Net/Link",
    "eventKey": "k",
    "eventClassKey": "link",
    "severity": 4,
    "summary": "link down",
    "message": "eth0 lost carrier",
    "status": "New",
    "count": 3,
    "firstTime": "2024-05-01T10:00:00Z",
    "lastTime": "2024-05-01T10:05:00Z",
    "agent": "snmp",
    "source": "poller-1",
    "details": {"site": "par1", "rack": 12},
}
DEVICE: dict[str, Any] = {
    "id": "web01",
    "title": "Web server 1",
    "priority": 800,
    "productionState": 1000,
    "groups": ["/Web", "/Paris"],
    "ipAddress": "10.0.0.1",
}
URLS = {
    "baseUrl": "https://incman.example",
    "eventUrl": "https://incman.example/events/ev-1",
    "eventsUrl": "https://incman.example/events",
    "deviceUrl": "https://incman.example/devices/web01",
    "ackUrl": "https://incman.example/events/ev-1/ack",
    "closeUrl": "https://incman.example/events/ev-1/close",
    "reopenUrl": "https://incman.example/events/ev-1/reopen",
}
DEFAULTS: dict[str, Any] = {
    "summary": "link down",
    "description": "eth0 lost carrier",
    "severity": "4",
}
MISSING = object()


def apply(
    mapping: str,
    *,
    event: dict[str, Any] | None = None,
    device: dict[str, Any] | object | None = MISSING,
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event = EVENT if event is None else event
    dev = DEVICE if device is MISSING else device
    defaults = DEFAULTS if defaults is None else defaults
    context = build_context(event, dev, URLS, defaults)  # type: ignore[arg-type]
    return apply_field_mapping(defaults, mapping, context)


def value_of(mapping_value: str, **kwargs: Any) -> Any:
    return apply(f"x, {mapping_value}", **kwargs)["x"]


# -- the seed's examples -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mapping", "field", "expected"),
    [
        (
            "comments, Created by Zenoss IncidentManagement",
            "comments",
            "Created by Zenoss IncidentManagement",
        ),
        ("Device, ${dev/title}", "Device", "Web server 1"),
        ("Device, ${python: (dev.titleOrId())}", "Device", "Web server 1"),
        ("Device, ${dev/titleOrId}", "Device", "Web server 1"),
        ("comments,Device: ${urls/deviceUrl}", "comments", "Device: " + URLS["deviceUrl"]),
    ],
)
def test_seed_examples(mapping: str, field: str, expected: str) -> None:
    result = apply(mapping)
    assert result[field] == expected
    assert {k: v for k, v in result.items() if k != field} == DEFAULTS


SEVERITY_CAP = (
    "severity,${python: '3' if hasattr(dev, 'getPriority') and int(dev.getPriority()) <= 800"
    " and int(defaultFields.get('severity')) > 3 else defaultFields.get('severity')}"
)


@pytest.mark.parametrize(
    ("priority", "default_severity", "expected"),
    [(800, "5", "3"), (1000, "5", "5"), (800, "2", "2"), (None, "5", "3"), (800, "4", "3")],
)
def test_seed_severity_cap(priority: int | None, default_severity: str, expected: str) -> None:
    device = {**DEVICE, "priority": priority} if priority is not None else None
    defaults = {**DEFAULTS, "severity": default_severity}
    assert apply(SEVERITY_CAP, device=device, defaults=defaults)["severity"] == expected


def test_seed_new_description() -> None:
    result = apply("NewDescription,${python: mappingUtils.getDescription(evt)}")
    text = result["NewDescription"]
    for part in ("link down", "eth0 lost carrier", "web01", "eth0", "/Net/Link", "Error"):
        assert part in text
    for part in ("3", EVENT["firstTime"], EVENT["lastTime"], URLS["eventUrl"]):
        assert part in text
    assert "[code]" not in text
    assert len(text.splitlines()) == 10


def test_seed_remove_default_field() -> None:
    result = apply("description, ${removeField}")
    assert "description" not in result
    assert result == {"summary": "link down", "severity": "4"}


# -- grammar -------------------------------------------------------------------------------------
def test_parse_pairs_comments_blank_lines_and_first_comma() -> None:
    text = "# a comment\n\n  summary ,  a, b, c  \n   # indented comment\nurgency,1\n"
    assert parse_field_mapping(text) == [("summary", "a, b, c"), ("urgency", "1")]


def test_parse_empty_text() -> None:
    assert parse_field_mapping("") == []
    assert apply("") == DEFAULTS


def test_empty_value_is_allowed() -> None:
    assert apply("summary,")["summary"] == ""


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a, 1\n\nno comma here", "line 3"),
        ("a, 1\n, value", "line 2: empty field name"),
        ("x, ${evt/summary", "line 1: unterminated"),
        ("x, ${}", "line 1"),
        ("x, ${python: }", "empty expression"),
        ("x, ${nothing/summary}", "unknown name 'nothing'"),
        ("x, ${evt//summary}", "invalid path"),
        ("x, ${evt/_data}", "invalid path"),
        ("x, ${python: 1 +}", "invalid python expression"),
        ("x, ${jmespath: evt.[}", "invalid jmespath"),
        ("x, ${python: __import__('os')}", "'__import__' is not allowed"),
        ("x, ${python: evt.__class__}", "'__class__' is not allowed"),
        ("x, ${python: f'{evt}'}", "JoinedStr"),
        ("x, ${python: [c for c in 'ab']}", "ListComp"),
    ],
)
def test_parse_rejects(text: str, fragment: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_field_mapping(text)
    assert fragment in str(info.value)
    with pytest.raises(MappingError):  # apply validates too
        apply(text)


def test_mapping_error_names_line_and_field() -> None:
    with pytest.raises(MappingError) as info:
        parse_field_mapping("a, 1\nb, ${python: (}")
    assert info.value.field == "b"
    assert "line 2" in str(info.value)
    with pytest.raises(MappingError) as info:
        parse_field_mapping("just text")
    assert info.value.field is None
    assert isinstance(info.value, ValueError)


# -- substitutions -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${evt/summary}", "link down"),
        ("${evt/evid}", "ev-1"),
        ("${evt/severity}", "4"),  # path results are text
        ("${evt/details/site}", "par1"),
        ("${component}", "eth0"),
        ("${dev/groups/1}", "/Paris"),
        ("${dev/getPriority}", "800"),
        ("${dev/getProductionState}", "1000"),
        ("${urls/eventUrl}", URLS["eventUrl"]),
        ("${defaultFields/severity}", "4"),
        ("${ evt / summary }", "link down"),
        ("[${evt/severity}] ${evt/summary} on ${dev/titleOrId}", "[4] link down on Web server 1"),
        ("sev=${python: evt.severity + 1}!", "sev=5!"),
        ("${jmespath: evt.summary} @ ${jmespath: dev.groups[0]}", "link down @ /Web"),
        ("a ${python: None} b", "a  b"),
        ("$ {not a substitution} and $x", "$ {not a substitution} and $x"),
    ],
)
def test_text_substitution(value: str, expected: str) -> None:
    assert value_of(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${python: evt.count + 1}", 4),
        ("${python: evt.severity >= 4}", True),
        ("${python: dev.getPriority()}", 800),
        ("${python: evt.details}", {"site": "par1", "rack": 12}),
        ("${python: {'a': 1, 'b': '}'}['b']}", "}"),
        ("${python: None}", ""),
        ("${jmespath: evt.details.rack}", 12),
        ("${jmespath: dev.groups}", ["/Web", "/Paris"]),
        (
            "${jmespath: {s: evt.summary, u: urls.eventUrl}}",
            {"s": "link down", "u": URLS["eventUrl"]},
        ),
        ("${jmespath: length(dev.groups)}", 2),
        ("${jmespath: evt.nothing}", ""),
        ("${jmespath: defaultFields.severity}", "4"),
        ("${jmespath: component}", "eth0"),
    ],
)
def test_whole_value_expression_keeps_raw_result(value: str, expected: Any) -> None:
    assert value_of(value) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("evt.summary.upper()", "LINK DOWN"),
        ("evt.evid", "ev-1"),
        ("evt.details['site']", "par1"),
        ("evt.details.get('missing', 'none')", "none"),
        ("urls.deviceUrl == urls['deviceUrl']", True),
        ("urls.get('nothing', '-')", "-"),
        ("component", "eth0"),
        ("dev.id + '/' + dev.title", "web01/Web server 1"),
        ("dev.ipAddress", "10.0.0.1"),
        ("dev.getProductionState()", 1000),
        ("defaultFields['severity']", "4"),
        ("len(evt.summary)", 9),
        ("min(evt.severity, 3)", 3),
        ("max([1, 7, 2])", 7),
        ("int('12') * 2", 24),
        ("float('1.5') + 1", 2.5),
        ("str(evt.count) + 'x'", "3x"),
        ("hasattr(evt, 'summary')", True),
        ("hasattr(evt, 'nothing')", False),
        ("not (evt.severity < 3 or evt.count > 10)", True),
        ("', '.join(dev.groups)", "/Web, /Paris"),
        ("evt.message.replace('eth0', 'if0')", "if0 lost carrier"),
        ("2 ** 10", 1024),
        ("7 % 3", 1),
        ("mappingUtils.getSevString(evt)", "Error"),
        ("mappingUtils.getSevString(2)", "Info"),
    ],
)
def test_python_expressions(expr: str, expected: Any) -> None:
    assert value_of(f"${{python: {expr}}}") == expected


# -- removal -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("severity", "removed"),
    [(2, True), (4, False)],
)
def test_remove_by_expression(severity: int, removed: bool) -> None:
    mapping = "description, ${python: removeField if evt.severity < 3 else 'x'}"
    result = apply(mapping, event={**EVENT, "severity": severity})
    assert ("description" not in result) is removed
    if not removed:
        assert result["description"] == "x"


def test_remove_field_that_is_not_there_and_add_back() -> None:
    assert apply("nothing, ${removeField}") == DEFAULTS
    result = apply("summary, ${removeField}\nsummary, again")
    assert result["summary"] == "again"
    assert list(result) == ["description", "severity", "summary"]


def test_remove_field_inside_text_removes_too() -> None:
    assert "summary" not in apply("summary, prefix ${removeField}")


def test_remove_sentinel_is_exposed() -> None:
    context = build_context(EVENT, DEVICE, URLS, DEFAULTS)
    assert context["removeField"] is REMOVE_FIELD


# -- order, purity -------------------------------------------------------------------------------
def test_result_is_a_new_dict_and_inputs_are_untouched() -> None:
    event, device, defaults = copy.deepcopy(EVENT), copy.deepcopy(DEVICE), dict(DEFAULTS)
    context = build_context(event, device, URLS, defaults)
    mapping = (
        "severity, 1\n"
        "added, ${python: defaultFields.pop('summary')}\n"
        "copy, ${defaultFields/severity}\n"
        "summary2, ${defaultFields/summary}\n"
        "details, ${python: evt.details.update({'site': 'x'})}\n"
        "site, ${evt/details/site}"
    )
    result = apply_field_mapping(defaults, mapping, context)
    assert result is not defaults
    assert defaults == DEFAULTS and event == EVENT and device == DEVICE
    assert result["severity"] == "1"
    assert result["added"] == "link down"
    assert result["copy"] == "4"  # later lines see the original defaults
    assert result["summary2"] == "link down"
    assert result["site"] == "par1"
    # the context can be reused for another mapping
    assert apply_field_mapping(defaults, "y, ${defaultFields/summary}", context)["y"] == "link down"


def test_build_context_copies_its_inputs() -> None:
    event = copy.deepcopy(EVENT)
    context = build_context(event, DEVICE, URLS, DEFAULTS)
    event["summary"] = "changed"
    assert apply_field_mapping(DEFAULTS, "x, ${evt/summary}", context)["x"] == "link down"


# -- the contexts --------------------------------------------------------------------------------
def test_unknown_device() -> None:
    context = build_context(EVENT, None, URLS, DEFAULTS)
    dev: Any = context["dev"]
    assert (dev.id, dev.title, dev.titleOrId(), dev.getPriority()) == ("web01", "", "web01", 3)
    assert dev.getProductionState() is None
    assert not hasattr(dev, "priority")
    assert value_of("${dev/titleOrId}", device=None) == "web01"
    assert value_of("${python: hasattr(dev, 'getPriority')}", device=None) is True


def test_device_without_title_or_priority() -> None:
    device = {"id": "db01", "groups": []}
    assert (
        value_of("${dev/titleOrId}|${dev/getPriority}|${dev/title}.", device=device) == "db01|3|."
    )


def test_event_view() -> None:
    evt: Any = build_context(EVENT, DEVICE, URLS, DEFAULTS)["evt"]
    assert (evt.summary, evt.evid, evt.severity, evt["eventClass"]) == (
        "link down",
        "ev-1",
        4,
        "/Net/Link",
    )
    with pytest.raises(AttributeError):
        _ = evt.nothing
    with pytest.raises(KeyError):
        _ = evt["__class__"]
    assert not hasattr(build_context({"device": "d"}, None, {}, {})["evt"], "evid")


def test_urls_view() -> None:
    urls: Any = build_context(EVENT, DEVICE, URLS, DEFAULTS)["urls"]
    assert urls.eventUrl == urls["eventUrl"] == URLS["eventUrl"]
    assert urls.get("missing") is None


@pytest.mark.parametrize(("severity", "name"), list(enumerate(SEVERITY_NAMES)) + [(9, "Unknown")])
def test_get_sev_string(severity: int, name: str) -> None:
    utils: Any = build_context(EVENT, DEVICE, URLS, DEFAULTS)["mappingUtils"]
    assert (
        utils.getSevString(build_context({**EVENT, "severity": severity}, None, {}, {})["evt"])
        == name
    )
    assert utils.getSevString({"severity": severity}) == name


def test_severity_names() -> None:
    assert SEVERITY_NAMES == ("Clear", "Debug", "Info", "Warning", "Error", "Critical")


def test_description_skips_unknown_parts() -> None:
    context = build_context({"device": "d1", "summary": "s", "severity": 0}, None, {}, {})
    text = context["mappingUtils"].getDescription(context["evt"])  # type: ignore[attr-defined]
    assert text == "Summary: s\nDevice: d1\nSeverity: Clear"


# -- failures and the sandbox -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("${evt/nothing}", "${evt/nothing}"),
        ("${dev/nothing}", "${dev/nothing}"),
        ("${evt/details/nothing}", "nothing"),
        ("${urls/nothing}", "nothing"),
        ("${defaultFields/nothing}", "nothing"),
        ("${evt/summary/length}", "length"),
        ("${python: evt.nothing}", "nothing"),
        ("${python: 1 / 0}", "division"),
        ("${python: int('abc')}", "abc"),
        ("${python: nothing}", "nothing"),
        ("${python: open('/etc/passwd')}", "open"),
        ("${python: eval('1')}", "eval"),
        ("${python: getattr(evt, 'summary')}", "getattr"),
        ("${python: type(evt)}", "type"),
        ("${python: hasattr(evt, '__class__')}", "__class__"),
        ("${python: evt['__class__']}", "__class__"),
        ("${python: str.join(',', ['a'])}", "join"),
        ("${python: 'x'.format()}", "format"),
        ("${python: 'a'.ljust(10 ** 9)}", "ljust"),
        ("${python: (1).to_bytes(10 ** 9, 'big')}", "to_bytes"),
        ("${python: '%999999999s' % 'a'}", "formatting"),
        ("${python: ['a'] * 10}", "repeating"),
        ("${python: 9 ** 4000000}", "too large"),
        ("${python: ('x' * 60000).replace('x', 'yy')}", "replace"),
        ("${python: 'x'.join(['y' * 50000, 'z' * 50000])}", "join"),
        ("${python: 'a' * 99999}", "longer than"),
        ("${python: dev.getPriority(1)}", "getPriority"),
        ("${jmespath: length(evt.severity)}", "length"),
    ],
)
def test_evaluation_failures(value: str, fragment: str) -> None:
    with pytest.raises(MappingError) as info:
        apply(f"a, 1\nbroken, {value}")
    assert info.value.field == "broken"
    message = str(info.value)
    assert "'broken'" in message
    assert fragment in message


def test_expression_length_is_bounded() -> None:
    long_expr = "+".join(["1"] * 1001)  # 2,001 characters
    with pytest.raises(MappingError, match="longer than 2000"):
        parse_field_mapping(f"x, ${{python: {long_expr}}}")
    with pytest.raises(MappingError, match="longer than 2000"):
        parse_field_mapping(f"x, ${{jmespath: {'a.' * 1000}b}}")
    literal = "'" + "a" * 1990 + "'"
    assert value_of(f"${{python: {literal}}}") == "a" * 1990


def test_deep_nesting_is_a_mapping_error_with_a_short_message() -> None:
    with pytest.raises(MappingError) as info:
        apply("x, ${python: " + "+".join(["1"] * 999) + "}")
    assert len(str(info.value)) < 500


def test_simpleeval_extras_are_not_available() -> None:
    for expr in ("list('ab')", "dict(a=1)", "lambda: 1", "{c for c in 'ab'}"):
        with pytest.raises(MappingError):
            apply(f"x, ${{python: {expr}}}")


# -- the seed's other names: ${evt/url}, dmd, urls/smartViewUrl -----------------------------------
def test_evt_url_is_the_event_url() -> None:
    """Seed 000 (3.0.0): "Existing use of '${evt/url}' will automatically be migrated to
    '${urls/eventUrl}'" — so `${evt/url}` still works, and means the same."""
    assert value_of("${evt/url}") == URLS["eventUrl"] == value_of("${urls/eventUrl}")
    assert value_of("${python: evt.url}") == URLS["eventUrl"]
    assert value_of("${jmespath: evt.url}") == URLS["eventUrl"]
    # an event that carries its own `url` keeps it
    assert value_of("${evt/url}", event={**EVENT, "url": "https://elsewhere"}) == (
        "https://elsewhere"
    )


INVENTORY = {
    "web01": DEVICE,
    "db01": {"id": "db01", "title": "Primary database", "priority": 800},
}
CONFIGURATION = {
    "triggers": {"t": {"id": "t", "enabled": True, "when": {"severity": {"_gte": 3}}}},
    "notifications": {"n": {"id": "n", "integration": "debug", "options": {"send_clear": True}}},
    "suppression": {"threshold_num": 10},
}


def with_dmd(mapping: str) -> dict[str, Any]:
    dmd = DmdView(INVENTORY, CONFIGURATION)
    context = build_context(EVENT, DEVICE, URLS, DEFAULTS, dmd)
    return apply_field_mapping(DEFAULTS, mapping, context)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${dmd/devices/db01/title}", "Primary database"),
        ("${python: dmd.findDevice('db01').titleOrId()}", "Primary database"),
        ("${python: dmd.Devices.findDevice('db01').getPriority()}", 800),
        ("${python: dmd.findDevice('nope') is None}", True),
        ("${python: len(dmd.devices)}", 2),
        ("${python: dmd.notifications['n']['options']['send_clear']}", True),
        ("${python: dmd.triggers['t']['when']['severity']['_gte']}", 3),
        ("${dmd/triggers/t/enabled}", "True"),
        ("${dmd/suppression/threshold_num}", "10"),
        ("${jmespath: dmd.devices.db01.priority}", 800),
        ("${jmespath: keys(dmd.notifications)}", ["n"]),
    ],
)
def test_dmd_reads_the_configuration_and_the_devices(value: str, expected: Any) -> None:
    """Seed 000: `dmd` "provides access to dmd for advanced options" — here, read-only
    access to the configuration and the devices incman knows."""
    assert with_dmd(f"x, {value}")["x"] == expected


def test_dmd_cannot_change_what_it_reads() -> None:
    result = with_dmd(
        "a, ${python: dmd.devices.pop('db01')}\n"
        "b, ${python: dmd.findDevice('db01').title}\n"
        "c, ${python: dmd.notifications.clear()}\n"
        "d, ${python: len(dmd.notifications)}"
    )
    assert (result["b"], result["d"]) == ("Primary database", 1)
    assert INVENTORY["db01"]["title"] == "Primary database" and len(INVENTORY) == 2
    assert CONFIGURATION["notifications"]["n"]["options"] == {"send_clear": True}
    for value in ("${python: dmd._devices}", "${dmd/_configuration}"):
        with pytest.raises(MappingError):
            with_dmd(f"x, {value}")


def test_without_a_configuration_dmd_is_empty() -> None:
    assert value_of("${python: dmd.findDevice('db01') is None and len(dmd.devices)}") == 0
