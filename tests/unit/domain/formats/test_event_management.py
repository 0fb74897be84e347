"""Event management items (seed 003): addressing, annotations, statuses and their steps."""

from __future__ import annotations

from typing import Any

import pytest

from incman.domain.formats.event_management import (
    MAX_ITEMS,
    ItemError,
    batch_items,
    item_echo,
    parse_annotation,
    parse_status_item,
    status_steps,
    target_status,
)

EV = "AAAABWRDWOPER3lzOFI2tSCG49g="


@pytest.mark.parametrize(
    "doc, field",
    [
        ([], "annotations"),
        ({}, "annotations"),
        ({"annotations": {}}, "annotations"),
        ({"annotations": []}, "annotations"),
        ({"annotations": [{}] * (MAX_ITEMS + 1)}, "annotations"),
    ],
)
def test_malformed_batches_are_refused(doc: Any, field: str) -> None:
    with pytest.raises(ItemError) as err:
        batch_items(doc, "annotations")
    assert err.value.field == field


def test_a_batch_gives_its_items() -> None:
    assert batch_items({"annotations": [1, 2]}, "annotations") == [1, 2]


def test_the_seed_annotation_examples_parse() -> None:
    new = parse_annotation(
        {"eventId": EV, "occurrenceId": f"{EV}:1", "annotation": "my sample annotation"}
    )
    assert (new.annotation_id, new.text) == (None, "my sample annotation")
    update = parse_annotation(
        {
            "eventId": EV,
            "occurrenceId": f"{EV}:16",
            "annotationId": "4cVf7RnzENAbMLXdt8Qu",
            "annotation": "my sample annotation update",
        }
    )
    assert update.annotation_id == "4cVf7RnzENAbMLXdt8Qu"
    assert update.occurrence_id == f"{EV}:16"


@pytest.mark.parametrize(
    "item, text",
    [
        ({}, ""),
        ({"annotation": None}, ""),
        ({"annotation": "  "}, "  "),
        ({"annotationId": "N7"}, ""),
    ],
)
def test_the_annotation_text_is_optional(item: dict[str, Any], text: str) -> None:
    """Seed 003: `annotation (string, optional)`; only eventId and occurrenceId are required.
    Without it a new annotation is empty, and an update empties the one it names."""
    parsed = parse_annotation({"eventId": EV, "occurrenceId": f"{EV}:1", **item})
    assert parsed.text == text
    assert parsed.annotation_id == item.get("annotationId")


@pytest.mark.parametrize(
    "raw, field",
    [
        ("x", "item"),
        ({"occurrenceId": f"{EV}:1", "annotation": "a"}, "eventId"),
        ({"eventId": EV, "annotation": "a"}, "occurrenceId"),
        ({"eventId": EV, "occurrenceId": "other:1", "annotation": "a"}, "occurrenceId"),
        ({"eventId": EV, "occurrenceId": f"{EV}:0", "annotation": "a"}, "occurrenceId"),
        ({"eventId": EV, "occurrenceId": f"{EV}:x", "annotation": "a"}, "occurrenceId"),
        ({"eventId": EV, "occurrenceId": f"{EV}:1", "annotation": 7}, "annotation"),
        ({"eventId": EV, "occurrenceId": f"{EV}:1", "annotation": ["a"]}, "annotation"),
        (
            {"eventId": EV, "occurrenceId": f"{EV}:1", "annotation": "a", "annotationId": 5},
            "annotationId",
        ),
    ],
)
def test_bad_annotation_items_name_the_field(raw: Any, field: str) -> None:
    with pytest.raises(ItemError) as err:
        parse_annotation(raw)
    assert err.value.field == field


@pytest.mark.parametrize(
    "raw, target",
    [
        ({"acknowledged": True}, "Acknowledged"),
        ({"acknowledged": False}, "New"),
        ({"statusWrapper": {"status": "STATUS_DEFAULT"}}, "New"),
        ({"statusWrapper": {"status": "STATUS_OPEN"}}, "Acknowledged"),
        ({"statusWrapper": {"status": "STATUS_SUPPRESSED"}}, "Suppressed"),
        ({"statusWrapper": {"status": "STATUS_CLOSED"}}, "Closed"),
        ({"statusWrapper": {"status": "EM_STATUS_DEFAULT"}}, "New"),
        ({"statusWrapper": {"status": "EM_STATUS_OPEN"}}, "Acknowledged"),
        ({"statusWrapper": {"status": "EM_STATUS_SUPPRESSED"}}, "Suppressed"),
        ({"statusWrapper": {"status": "em_status_closed"}}, "Closed"),
        # statusWrapper wins over the default-valued acknowledged.
        ({"acknowledged": False, "statusWrapper": {"status": "STATUS_CLOSED"}}, "Closed"),
    ],
)
def test_target_status(raw: dict[str, Any], target: str) -> None:
    assert target_status(raw) == target


@pytest.mark.parametrize(
    "raw, field",
    [
        ({}, "statusWrapper"),
        ({"acknowledged": "yes"}, "acknowledged"),
        ({"statusWrapper": {}}, "statusWrapper.status"),
        ({"statusWrapper": "STATUS_OPEN"}, "statusWrapper.status"),
        ({"statusWrapper": {"status": "STATUS_GONE"}}, "statusWrapper.status"),
    ],
)
def test_an_item_with_no_usable_status_fails_with_a_reason(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ItemError) as err:
        target_status(raw)
    assert err.value.field == field


def test_status_item_keeps_its_address() -> None:
    item = parse_status_item(
        {
            "eventId": EV,
            "occurrenceId": f"{EV}:134",
            "statusWrapper": {"status": "EM_STATUS_SUPPRESSED"},
        }
    )
    assert (item.event_id, item.occurrence_id, item.target) == (EV, f"{EV}:134", "Suppressed")


@pytest.mark.parametrize(
    "current, target, steps",
    [
        ("New", "New", ()),
        ("New", "Acknowledged", ("acknowledge",)),
        ("New", "Suppressed", ("suppress",)),
        ("New", "Closed", ("close",)),
        ("Acknowledged", "New", ("set_new",)),
        ("Acknowledged", "Acknowledged", ()),
        ("Acknowledged", "Suppressed", ("suppress",)),
        ("Acknowledged", "Closed", ("close",)),
        ("Suppressed", "New", ("set_new",)),
        ("Suppressed", "Acknowledged", ("acknowledge",)),
        ("Suppressed", "Closed", ("close",)),
        ("Closed", "New", ("reopen",)),
        ("Closed", "Closed", ()),
        ("Cleared", "New", ("reopen",)),
        ("Cleared", "Closed", ("close",)),
        ("Aged", "New", ("reopen",)),
    ],
)
def test_status_steps(current: str, target: str, steps: tuple[str, ...]) -> None:
    assert status_steps(current, target) == steps


@pytest.mark.parametrize(
    "current, target",
    [
        ("Closed", "Acknowledged"),
        ("Closed", "Suppressed"),
        ("Cleared", "Acknowledged"),
        ("Aged", "Suppressed"),
    ],
)
def test_closed_events_cannot_be_acknowledged_or_suppressed(current: str, target: str) -> None:
    with pytest.raises(ItemError, match="only open events"):
        status_steps(current, target)


def test_item_echo() -> None:
    assert item_echo({"eventId": "e", "occurrenceId": "e:1", "annotation": "x"}) == {
        "eventId": "e",
        "occurrenceId": "e:1",
    }
    assert item_echo("junk") == {}
