"""`incman trigger|notification apply -f`: the files it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from incman.commands import CliError
from incman.commands.config_objects import load_objects


@pytest.mark.parametrize(
    "text, kind, ids",
    [
        ("id: t1\nwhen: {severity: {_gte: 4}}\n", "trigger", ["t1"]),
        ('[{"id": "t1"}, {"id": "t2", "enabled": false}]', "trigger", ["t1", "t2"]),
        (
            "triggers: [{id: t1}]\nnotifications: [{id: n1, integration: debug}]\n",
            "notification",
            ["n1"],
        ),
        (
            "triggers: [{id: t1}]\nnotifications: [{id: n1, integration: debug}]\n",
            "trigger",
            ["t1"],
        ),
    ],
)
def test_one_object_a_list_or_the_config_file_shape(
    tmp_path: Path, text: str, kind: str, ids: list[str]
) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(text)
    assert [o["id"] for o in load_objects(str(path), kind)] == ids


def test_view_only_fields_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text("id: n1\nintegration: debug\nsource: api\nreadOnly: false\n")
    assert load_objects(str(path), "notification") == [{"id": "n1", "integration": "debug"}]


@pytest.mark.parametrize("text", ["- just a string\n", "{id: 5}\n", "a: [\n"])
def test_bad_files_are_clear_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CliError):
        load_objects(str(path), "trigger")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot read"):
        load_objects(str(tmp_path / "nope.yaml"), "trigger")
