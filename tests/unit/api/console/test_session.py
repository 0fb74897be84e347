"""The console's signed cookies, redirects, passwords, and the API document's key schemes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from incman.api.console.passwords import hash_password, verify_password
from incman.api.console.session import sign, unsign
from incman.api.console.web import safe_next
from incman.settings import reset_settings
from incman.store.catalog import CatalogError, parse_user


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INCMAN_SECRET_KEY", "unit-test-secret")
    reset_settings()
    yield
    reset_settings()


def test_signed_values_round_trip_and_resist_tampering(monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign({"u": "oncall1", "v": "password"})
    assert unsign(token) == {"u": "oncall1", "v": "password"}
    body, mac = token.split(".")
    assert unsign(f"{body}x.{mac}") is None
    assert unsign(f"{body}.{mac[:-2]}AA") is None
    assert unsign(body) is None
    assert unsign("") is None
    assert unsign(token, "console-flash") is None  # one purpose's value is not another's
    monkeypatch.setenv("INCMAN_SECRET_KEY", "another")
    reset_settings()
    assert unsign(token) is None


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        ("/console/events/abc?x=1", "/console/events/abc?x=1"),
        ("//evil.example/console", "/console/events"),
        ("https://evil.example/console", "/console/events"),
        ("/api/v1/events", "/console/events"),
        ("/console\\@evil", "/console/events"),
        ("", "/console/events"),
    ],
)
def test_sign_in_returns_only_to_console_pages(wanted: str, kept: str) -> None:
    assert safe_next(wanted) == kept


def test_passwords_are_argon2_and_checked() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong horse")
    assert not verify_password("", "correct horse")  # no such user
    assert not verify_password("$argon2id$garbage", "correct horse")


def test_a_configured_password_must_be_a_hash() -> None:
    user = parse_user(
        {"name": "a", "role": "operator", "password_hash": hash_password("x" * 9)}, "u"
    )
    assert user.password_hash.startswith("$argon2")
    assert "password_hash" not in repr(user) and user.password_hash not in repr(user)
    with pytest.raises(CatalogError, match="Argon2"):
        parse_user({"name": "a", "password_hash": "plain-text"}, "users[0]")


def test_make_password_prints_a_hash_from_a_pipe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "incman.api.console.make_password"],
        input="long-enough-secret\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert verify_password(done.stdout.strip(), "long-enough-secret")
    short = subprocess.run(
        [sys.executable, "-m", "incman.api.console.make_password"],
        input="short\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert short.returncode == 2 and "at least 8" in short.stderr


def test_the_api_document_declares_the_three_ways_of_sending_a_key() -> None:
    from incman.api.app import create_app

    doc = create_app().openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["zenossApiKey"]["in"] == "header"
    assert schemes["zenossApiKey"]["name"] == "zenoss-api-key"
    assert schemes["apiKeyQuery"] == {**schemes["apiKeyQuery"], "in": "query", "name": "api_key"}
    events = doc["paths"]["/api/v1/events"]["get"]
    assert {name for req in events["security"] for name in req} == set(schemes)
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert not any(path.startswith("/console") for path in doc["paths"])
