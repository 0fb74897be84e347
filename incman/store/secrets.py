"""Secret fields of notifications stored over the API, encrypted at rest with Fernet.

Keys come from INCMAN_SECRETS_KEY (Fernet keys, comma-separated, newest first: the first
encrypts, all decrypt, so a key can be rotated without a pause); the embedded default keeps
one in its data folder instead. An encrypted field holds `fernet:<token>`, the token of the
JSON of its value, so a secret that is a mapping (HTTP headers) is encrypted whole."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select

from incman.settings import get_settings
from incman.store.db import session_scope
from incman.store.models import Notification

log = logging.getLogger(__name__)

PREFIX = "fernet:"
KEY_FILE = "secrets.key"


class SecretsError(RuntimeError):
    """No key, or no key that opens a stored secret."""


def secret_fields(integration: str, config: Mapping[str, Any]) -> frozenset[str]:
    """The keys of `config` kept secret: what its integration class declares secret, and any
    key it does not declare (nothing says such a value is harmless), as answers mask them.
    The one place that asks; the integration registry answers."""
    from incman.integrations.registry import masked_keys

    return frozenset(masked_keys(integration, config))


def _file_keys(folder: Path) -> list[str]:
    """The embedded default's keys: `secrets.key` in the data folder, created once (0600).
    Written aside and linked into place, so a process starting beside another never reads
    it half-written."""
    path = folder / KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        aside = folder / f".{KEY_FILE}.{os.getpid()}"
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key() + b"\n")
        try:
            os.link(aside, path)
        except FileExistsError:  # another process of this instance made it first
            pass
        finally:
            aside.unlink()
    return path.read_text().replace(",", "\n").split()


def configured_keys() -> list[str]:
    """The keys in force, newest first (none: secrets cannot be stored)."""
    settings = get_settings()
    if settings.secrets_key.strip():
        return [k.strip() for k in settings.secrets_key.split(",") if k.strip()]
    if settings.embedded:
        return _file_keys(Path(settings.data_dir))
    return []


def cipher() -> MultiFernet | None:
    keys = configured_keys()
    if not keys:
        return None
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise SecretsError(
            "INCMAN_SECRETS_KEY: each key must be a Fernet key (32 url-safe base64 bytes); "
            "`incman secrets generate` prints one"
        ) from exc


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt_config(integration: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `config` with its secret fields encrypted (those already are stay)."""
    out = dict(config)
    wanted = [
        name
        for name in sorted(secret_fields(integration, config))
        if out.get(name) not in (None, "") and not is_encrypted(out[name])
    ]
    if not wanted:
        return out
    box = cipher()
    if box is None:
        raise SecretsError(
            f"config.{wanted[0]} is a secret and INCMAN_SECRETS_KEY is not set: secrets are "
            "stored encrypted only (see README, Secrets)"
        )
    for name in wanted:
        out[name] = PREFIX + box.encrypt(json.dumps(out[name]).encode()).decode()
    return out


def _open(box: MultiFernet | None, value: str) -> Any:
    if box is None:
        raise SecretsError("encrypted secrets are stored and INCMAN_SECRETS_KEY is not set")
    try:
        return json.loads(box.decrypt(value[len(PREFIX) :].encode()))
    except InvalidToken as exc:
        raise SecretsError("no key of INCMAN_SECRETS_KEY opens a stored secret") from exc


def decrypt_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `config` with every encrypted field opened."""
    if not any(is_encrypted(v) for v in config.values()):
        return dict(config)
    box = cipher()
    return {k: _open(box, v) if is_encrypted(v) else v for k, v in config.items()}


def check_keys() -> None:
    """Refuse to run (SecretsError) when stored secrets exist that no key in force opens."""
    with session_scope() as session:
        for row in session.scalars(select(Notification)):
            config = row.definition.get("config") or {}
            if isinstance(config, dict):
                try:
                    decrypt_config(config)
                except SecretsError as exc:
                    raise SecretsError(f"notification {row.id}: {exc}") from exc


def secrets_problem() -> str | None:
    """Why this process must not start (stored secrets it cannot open), or None. A database
    that cannot be reached is not such a reason: it is checked when the process starts."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        check_keys()
    except SecretsError as exc:
        return f"{exc} (see README, Secrets)"
    except SQLAlchemyError as exc:
        log.warning("could not check the stored secrets: %s", exc.__class__.__name__)
    return None


@dataclass
class Rotation:
    """What `rotate` did: fields re-encrypted with the newest key, plain ones encrypted."""

    rotated: int = 0
    encrypted: int = 0
    notifications: int = 0


def rotate() -> Rotation:
    """Re-encrypt every stored secret with the newest key, and encrypt any stored in plain
    text (rows written before encryption): one transaction."""
    box = cipher()
    if box is None:
        raise SecretsError("INCMAN_SECRETS_KEY is not set: nothing to rotate to")
    done = Rotation()
    with session_scope() as session:
        for row in session.scalars(select(Notification).with_for_update()):
            config = row.definition.get("config")
            if not isinstance(config, dict):
                continue
            new = {}
            for name, value in config.items():
                if is_encrypted(value):
                    try:
                        token = box.rotate(value[len(PREFIX) :].encode())
                    except InvalidToken as exc:
                        raise SecretsError(
                            f"notification {row.id}: no key opens config.{name}"
                        ) from exc
                    new[name] = PREFIX + token.decode()
                    done.rotated += 1
                else:
                    new[name] = value
            sealed = encrypt_config(row.integration, new)
            done.encrypted += sum(1 for k in sealed if sealed[k] != new[k])
            if sealed != config:
                row.definition = {**row.definition, "config": sealed}
                done.notifications += 1
    return done
