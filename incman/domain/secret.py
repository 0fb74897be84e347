"""Write-only secrets of a notification's plugin config.

They are masked on the way out, and kept on an edit that leaves them out or sends the mask back
(the seed's ZEN-29814 not repeated)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "********"


def mask_config(config: Mapping[str, Any], secret_keys: Iterable[str]) -> dict[str, Any]:
    """The config as answers show it: every secret that has a value is the mask."""
    secrets = set(secret_keys)
    return {k: (MASK if k in secrets and v not in (None, "") else v) for k, v in config.items()}


def merge_secrets(
    new: Mapping[str, Any], stored: Mapping[str, Any], secret_keys: Iterable[str]
) -> dict[str, Any]:
    """The config to store after an edit: a secret left out or sent as the mask keeps the
    stored value; an explicit null removes it. A mask with nothing stored stays (and is
    refused by the caller: see `unresolved_masks`)."""
    out = dict(new)
    for key in set(secret_keys):
        if (key not in new or new[key] == MASK) and key in stored:
            out[key] = stored[key]
        elif key in new and new[key] is None:
            out.pop(key, None)
    return out


def unresolved_masks(config: Mapping[str, Any]) -> list[str]:
    """Keys whose value is still the mask (nothing stored to keep): not a real value."""
    return sorted(k for k, v in config.items() if v == MASK)
