"""The CLI's client of the incman API.

Where (incman.commands.locate.api_url) and with which key (`--api-key`, INCMAN_API_KEY), one
call helper, and the API's errors in one line."""

from __future__ import annotations

import json
from typing import Any

import requests

from incman.commands import CliError
from incman.commands.locate import api_url
from incman.settings import get_settings


def default_url() -> str:
    """Where the API runs when no `--url` is given (see incman.commands.locate.api_url)."""
    return api_url(None)


def default_key() -> str:
    return get_settings().cli_api_key


def reason(resp: requests.Response) -> str:
    """The API's error answer in one line: status, error, detail and field."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason
        return f"HTTP {resp.status_code}: {text}"
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = json.dumps(detail) if detail is not None else ""
    parts = [f"HTTP {resp.status_code}", str(body.get("error") or resp.reason or "")]
    out = ": ".join(p for p in parts if p)
    if detail:
        out += f": {detail}"
    if body.get("field"):
        out += f" (field {body['field']})"
    return out


def call(
    method: str,
    path: str,
    *,
    url: str | None = None,
    key: str | None = None,
    body: Any = None,
    timeout: float = 30.0,
) -> requests.Response:
    """Send one request; CliError when the API cannot be reached."""
    key = key if key is not None else default_key()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    target = api_url(url) + path
    try:
        return requests.request(method, target, json=body, headers=headers, timeout=timeout)
    except requests.Timeout as exc:
        raise CliError(f"{target} did not answer in {timeout}s") from exc
    except requests.RequestException as exc:
        raise CliError(
            f"cannot reach {target}: {exc.__class__.__name__}: is incman running "
            "there? (give --url or INCMAN_URL, or run this beside `incman run`'s data folder)"
        ) from exc


def call_json(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """`call`, then the JSON answer; CliError with the API's reason on a 4xx/5xx."""
    resp = call(method, path, **kwargs)
    if resp.status_code >= 400:
        raise CliError(reason(resp))
    try:
        answer = resp.json()
    except ValueError as exc:
        raise CliError(f"HTTP {resp.status_code}: the answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise CliError(f"HTTP {resp.status_code}: unexpected answer {resp.text[:200]!r}")
    return answer
