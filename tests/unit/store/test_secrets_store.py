"""Notification secrets at rest: the embedded key file, encryption of secret fields only,
refusal without a key, and rotation to a new key (SQLite, the embedded default's database)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from incman.settings import reset_settings
from incman.store import secrets
from incman.store.db import reset_engine, session_scope
from incman.store.migrations import upgrade
from incman.store.models import Notification


@pytest.fixture()
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The embedded default: no Redis named, no key set, a migrated SQLite file."""
    for name in ("INCMAN_REDIS_URL", "INCMAN_SECRETS_KEY", "INCMAN_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INCMAN_DATA_DIR", str(tmp_path))
    reset_settings(), reset_engine()
    upgrade(f"sqlite:///{tmp_path / 'incman.db'}")
    yield tmp_path
    reset_settings(), reset_engine()


def use_key(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    monkeypatch.setenv("INCMAN_REDIS_URL", "redis://127.0.0.1:6379/0")  # not embedded
    monkeypatch.setenv("INCMAN_SECRETS_KEY", ",".join(keys))
    reset_settings()


def store(nid: str, config: dict[str, object], integration: str = "servicenow") -> None:
    with session_scope() as session:
        session.add(
            Notification(
                id=nid, integration=integration, enabled=True, definition={"config": config}
            )
        )


def stored(nid: str) -> dict[str, object]:
    with session_scope() as session:
        row = session.get(Notification, nid)
        assert row is not None
        return dict(row.definition["config"])


def test_the_embedded_default_makes_one_private_key_file(embedded: Path) -> None:
    # A password no Fernet token can hold by chance (a token is URL-safe base64: no "!").
    sealed = secrets.encrypt_config("servicenow", {"url": "u", "password": "pw!pw!pw"})
    path = embedded / secrets.KEY_FILE
    assert path.exists() and os.stat(path).st_mode & 0o777 == 0o600
    assert sealed["url"] == "u" and str(sealed["password"]).startswith("fernet:")
    assert "pw!pw!pw" not in json.dumps(sealed)
    assert secrets.decrypt_config(sealed) == {"url": "u", "password": "pw!pw!pw"}
    assert secrets.configured_keys() == path.read_text().split()  # made once, then read


def test_a_mapping_secret_is_encrypted_whole(embedded: Path) -> None:
    headers = {"Authorization": "Bearer t0k3n"}
    sealed = secrets.encrypt_config("http", {"url": "u", "headers": headers})
    assert "t0k3n" not in json.dumps(sealed)
    assert secrets.decrypt_config(sealed)["headers"] == headers


def test_without_a_key_secrets_are_refused_and_stored_ones_stop_the_start(
    embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    use_key(monkeypatch, key)
    store("n1", secrets.encrypt_config("servicenow", {"password": "pw"}))
    assert secrets.secrets_problem() is None
    use_key(monkeypatch)  # no key at all
    with pytest.raises(secrets.SecretsError, match="INCMAN_SECRETS_KEY is not set"):
        secrets.encrypt_config("servicenow", {"password": "pw"})
    assert "INCMAN_SECRETS_KEY" in (secrets.secrets_problem() or "")
    use_key(monkeypatch, Fernet.generate_key().decode())  # a key that does not open it
    assert "no key" in (secrets.secrets_problem() or "")
    use_key(monkeypatch, "not-a-fernet-key")
    assert "Fernet key" in (secrets.secrets_problem() or "")


def test_rotate_re_encrypts_with_the_newest_key_and_encrypts_plain_rows(
    embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_key(monkeypatch, old)
    store("sealed", secrets.encrypt_config("servicenow", {"url": "u", "password": "pw"}))
    store("plain", {"url": "u", "password": "written-before-encryption"})
    use_key(monkeypatch, new, old)
    done = secrets.rotate()
    assert (done.rotated, done.encrypted, done.notifications) == (1, 1, 2)
    use_key(monkeypatch, new)  # the old key can go now
    assert secrets.decrypt_config(stored("sealed"))["password"] == "pw"
    assert secrets.decrypt_config(stored("plain"))["password"] == "written-before-encryption"
    assert stored("plain")["url"] == "u"


def test_secret_fields_come_from_the_integration_class() -> None:
    config = {"url": "u", "username": "me", "password": "p", "undeclared": "x"}
    assert secrets.secret_fields("servicenow", config) >= {"password", "undeclared"}
    assert not secrets.secret_fields("servicenow", config) & {"url", "username"}
    assert "headers" in secrets.secret_fields("http", {"headers": {}})
