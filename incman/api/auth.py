"""API keys and roles: keys are kept and compared as SHA-256 hashes, never logged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPBearer

from incman.settings import get_settings
from incman.store.catalog import ROLES, catalog_cache, get_catalog


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    groups: tuple[str, ...] = ()

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


ANONYMOUS = Principal("anonymous", "admin")


class KeyError_(ValueError):
    """A malformed INCMAN_API_KEYS entry."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_env_keys(raw: str) -> dict[str, Principal]:
    """`name:role:key,...` → {sha256(key): principal}."""
    out: dict[str, Principal] = {}
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        parts = entry.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise KeyError_("INCMAN_API_KEYS: each entry must be name:role:key")
        name, role, key = parts
        if role not in ROLES:
            raise KeyError_(
                f"INCMAN_API_KEYS: unknown role {role!r} for {name} ({', '.join(ROLES)})"
            )
        out[hash_key(key)] = Principal(name, role)
    return out


_table_cache: tuple[tuple[str, int], dict[str, Principal]] | None = None


def key_table() -> dict[str, Principal]:
    """Every configured key: the environment's and the configuration's users (rebuilt only
    when the settings or the catalog change)."""
    global _table_cache
    raw = get_settings().api_keys
    catalog = get_catalog()
    stamp = (raw, id(catalog.users))
    if _table_cache is not None and _table_cache[0] == stamp:
        return _table_cache[1]
    table = parse_env_keys(raw)
    for user in catalog.users.values():
        if user.api_key_sha256:
            table[user.api_key_sha256] = Principal(user.name, user.role, user.groups)
    _table_cache = (stamp, table)
    return table


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("zenoss-api-key") or request.query_params.get("api_key")


# The three ways of presenting a key, declared in the OpenAPI document so that the API docs'
# "Authorize" offers them; `presented_key` reads the key itself (none of these refuses).
BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="Authorization: Bearer <key>"
)
HEADER_KEY = APIKeyHeader(
    name="zenoss-api-key", scheme_name="zenossApiKey", auto_error=False, description="the key"
)
QUERY_KEY = APIKeyQuery(
    name="api_key",
    scheme_name="apiKeyQuery",
    auto_error=False,
    description="?api_key=<key>, for senders that cannot set headers",
)


def authenticate(request: Request, key: str | None = None) -> Principal:
    """The caller; 401 for a missing or wrong key (open mode when no key is configured)."""
    table = key_table()
    if not table:
        return ANONYMOUS
    key = key or presented_key(request)
    if not key:
        raise HTTPException(
            401,
            "an API key is required (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # A dictionary lookup of the SHA-256 digest: its timing tells nothing about the keys.
    principal = table.get(hash_key(key))
    if principal is not None:
        return principal
    raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})


# The role each thing a request can do to an event takes, the same in every format
# (docs/event-apis.md): a source reports (opens, repeats, clears, says something about its own
# event); acknowledging, closing and re-opening are decisions of operators.
EVENT_ACTION_ROLES = {
    "report": "ingest",
    "clear": "ingest",
    "acknowledge": "operator",
    "close": "operator",
    "reopen": "operator",
}


def event_action_refused(principal: Principal, action: str, how: str) -> str | None:
    """Why `principal` may not do `action` (as `how` asks it), or None when it may."""
    role = EVENT_ACTION_ROLES[action]
    if principal.has_role(role):
        return None
    return f"{how} needs role {role} or higher ({principal.name} is {principal.role})"


def require_event_action(principal: Principal, action: str, how: str) -> None:
    """403 unless `principal` may do `action` to events."""
    reason = event_action_refused(principal, action, how)
    if reason:
        raise HTTPException(403, reason)


def require(role: str):  # type: ignore[no-untyped-def]
    """A dependency: the caller must hold at least `role` (403 otherwise)."""

    async def dependency(
        request: Request,
        _bearer: object = Security(BEARER),
        _header: object = Security(HEADER_KEY),
        _query: object = Security(QUERY_KEY),
    ) -> Principal:
        return await authorized(request, role)

    return dependency


# What an operation that reads the key itself (not through `require`) declares in the OpenAPI
# document: any one of the three schemes.
KEY_SECURITY: list[dict[str, list[str]]] = [
    {"bearer": []},
    {"zenossApiKey": []},
    {"apiKeyQuery": []},
]


async def authorized(request: Request, role: str) -> Principal:
    """`authorize` for async handlers: the users are read again off the event loop when
    the catalog is due for a refresh, else at once."""
    if not catalog_cache.is_fresh():
        await run_in_threadpool(get_catalog)
    return authorize(request, role)


def authorize(request: Request, role: str) -> Principal:
    """The caller, who must hold at least `role` (401 without a known key, 403 below it)."""
    principal = authenticate(request)
    if not principal.has_role(role):
        raise HTTPException(
            403, f"role {role} or higher is required ({principal.name} is {principal.role})"
        )
    request.state.principal = principal
    return principal
