"""The config reference of every built-in integration, written from their declarations."""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

from incman.integrations.config import IntegrationConfig, Setting
from incman.integrations.registry import BUILTIN, integration_class

REGENERATE = (
    "python -c 'from incman.integrations.reference import config_reference as r; "
    'print(r(), end="")\' > docs/integrations.md'
)
_KINDS = {str: "text", int: "integer", float: "number", bool: "true/false"}


def _kind(kind: Any) -> str:
    args = typing.get_args(kind)
    if type(None) in args:
        return _kind(next(a for a in args if a is not type(None))) + " or null"
    if kind in _KINDS:
        return _KINDS[kind]
    origin = typing.get_origin(kind)
    if origin is tuple:
        return "list of text"
    if origin is dict:
        return "mapping of text" if args[1] is str else "mapping"
    return "any"


def _default(value: Any) -> str:
    if value in (None, "", (), {}):
        return ""
    shown = json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
    return f"`{shown.replace('|', '&#124;')}`".replace("\n", "\\n")


def _notes(spec: Setting) -> str:
    notes = [spec.help]
    if spec.required:
        notes.append("**required**" if spec.default in (None, "", (), {}) else "never empty")
    if spec.secret:
        notes.append("**secret** (write-only over the API)")
    if spec.choices:
        notes.append("one of " + ", ".join(f"`{c}`" for c in spec.choices if c != ""))
    return "; ".join(notes)


def _table(fields: dict[str, Setting]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, spec in fields.items():
        rows.append(
            f"| `{name}` | {_kind(spec.kind)} | {_default(spec.default)} | {_notes(spec)} |"
        )
    return rows


def config_reference() -> str:
    """docs/integrations.md: every key of every built-in integration's config."""
    shared = IntegrationConfig.fields
    lines = [
        "# Integration config reference",
        "",
        "Written from the configs the plugins declare (`incman/integrations/`); regenerate with",
        f"`{REGENERATE}`.",
        "",
        "## Every integration",
        "",
        *_table(shared),
    ]
    for name in sorted(BUILTIN):
        config_class = integration_class(name).config_class
        own = {k: v for k, v in config_class.fields.items() if k not in shared}
        lines += ["", f"## `{name}`", ""]
        if config_class.__doc__:
            lines += [inspect.cleandoc(config_class.__doc__).replace("\n", " "), ""]
        lines += _table(own)
    return "\n".join(lines) + "\n"
