"""Triggers and notifications over the API and the CLI: precedence of the configuration
file, write-only secrets, roles, manual use; and the per-key rate limit of ingest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from helpers import API_KEY, Client, unique, wait_for

from incman.store.db import session_scope
from incman.store.models import Notification
from incman.store.secrets import decrypt_config

KEYS = (
    f"tester:admin:{API_KEY},feeder:ingest:ingest-key,boss:manager:manager-key,"
    "burst:ingest:burst-key"
)
CONFIG: dict[str, Any] = {
    "triggers": [{"id": "file-trigger", "when": {"device": {"_m": "^file-"}}}],
    "notifications": [
        {
            "id": "file-notification",
            "integration": "debug",
            "triggers": ["file-trigger"],
            "subscribers": ["ops-team"],
            "config": {"proxy": "http://u:file-secret@proxy:3128"},
        },
        {
            "id": "file-hidden",
            "integration": "debug",
            "subscribers": ["ops-team"],
            "options": {"hidden": True},
        },
    ],
    "users": [
        {"name": "oncall1", "role": "operator", "groups": ["ops-team"], "api_key": "oncall-key"},
        {"name": "visitor", "role": "operator", "api_key": "visitor-key"},
    ],
}


@pytest.fixture(scope="module")
def stack(make_stack: Any) -> Any:
    return make_stack(CONFIG, extra_env={"INCMAN_API_KEYS": KEYS, "INCMAN_API_RATE_LIMIT": "40/5"})


@pytest.fixture(scope="module")
def client(stack: Any) -> Client:
    return stack.client


def as_key(client: Client, key: str) -> Client:
    return Client(client.base, key)


def put(client: Client, path: str, body: Any) -> requests.Response:
    return client.session.put(client.base + path, json=body, timeout=30)


def delete(client: Client, path: str) -> requests.Response:
    return client.session.delete(client.base + path, timeout=30)


def test_file_objects_are_listed_and_read_only(client: Client) -> None:
    items = {t["id"]: t for t in client.get("/api/v1/triggers").json()["items"]}
    assert items["file-trigger"]["readOnly"] is True
    for resp in (
        put(client, "/api/v1/triggers/file-trigger", {"when": {}}),
        delete(client, "/api/v1/triggers/file-trigger"),
        client.post("/api/v1/triggers", {"id": "file-trigger"}),
        put(client, "/api/v1/notifications/file-notification", {"integration": "debug"}),
        delete(client, "/api/v1/notifications/file-notification"),
    ):
        assert resp.status_code == 409, resp.text
        assert "configuration file" in resp.json()["detail"]


def test_trigger_create_read_replace_delete(client: Client) -> None:
    ident = unique("trig")
    created = client.post("/api/v1/triggers", {"id": ident, "when": {"severity": {"_gte": 4}}})
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": ident,
        "enabled": True,
        "when": {"severity": {"_gte": 4}},
        "source": "api",
        "readOnly": False,
    }
    assert client.post("/api/v1/triggers", {"id": ident}).status_code == 409
    replaced = put(client, f"/api/v1/triggers/{ident}", {"enabled": False, "when": {}})
    assert replaced.status_code == 200 and replaced.json()["enabled"] is False
    assert client.get(f"/api/v1/triggers/{ident}").json()["enabled"] is False
    bad = put(client, f"/api/v1/triggers/{ident}", {"when": {"severity": {"_like": 4}}})
    assert bad.status_code == 422 and "unknown operator" in bad.json()["detail"]
    mismatch = put(client, f"/api/v1/triggers/{ident}", {"id": "other"})
    assert mismatch.status_code == 422 and mismatch.json()["field"] == "id"
    assert delete(client, f"/api/v1/triggers/{ident}").status_code == 204
    assert client.get(f"/api/v1/triggers/{ident}").status_code == 404
    assert delete(client, f"/api/v1/triggers/{ident}").status_code == 404


def stored_config(ident: str) -> dict[str, Any]:
    """The row's config with its secrets opened (they are stored encrypted)."""
    with session_scope() as session:
        row = session.get(Notification, ident)
        assert row is not None
        raw = dict(row.definition["config"])
    assert all(str(raw[k]).startswith("fernet:") for k in ("password", "token") if k in raw)
    return decrypt_config(raw)


def test_secrets_are_write_only(client: Client) -> None:
    ident = unique("notif")
    body = {
        "id": ident,
        "integration": "debug",
        "config": {"proxy": "http://u:s3cret-1@proxy:3128", "url_base": "http://x"},
    }
    created = client.post("/api/v1/notifications", body)
    assert created.status_code == 201, created.text
    assert created.json()["config"] == {"proxy": "********", "url_base": "http://x"}
    assert (
        put(
            client,
            f"/api/v1/notifications/{ident}",
            {"integration": "debug", "config": {"url_base": "http://y"}},
        ).status_code
        == 200
    )
    assert stored_config(ident) == {
        "proxy": "http://u:s3cret-1@proxy:3128",
        "url_base": "http://y",
    }
    assert (
        put(
            client,
            f"/api/v1/notifications/{ident}",
            {"integration": "debug", "config": {"proxy": "********"}},
        ).status_code
        == 200
    )
    assert stored_config(ident)["proxy"] == "http://u:s3cret-1@proxy:3128"
    answers = [
        client.get("/api/v1/notifications").text,
        client.get(f"/api/v1/notifications/{ident}").text,
        client.get("/api/v1/notifications/file-notification").text,
    ]
    assert not any("s3cret" in a or "file-secret" in a for a in answers)
    masked = client.post(
        "/api/v1/notifications",
        {"id": unique("n"), "integration": "debug", "config": {"proxy": "********"}},
    )
    assert masked.status_code == 422 and masked.json()["field"] == "config.proxy"


def test_notification_validation(client: Client) -> None:
    for body, words in (
        ({"id": unique("n"), "integration": "nope"}, "unknown integration"),
        ({"id": unique("n"), "integration": "debug", "triggers": ["ghost"]}, "unknown trigger"),
        (
            {"id": unique("n"), "integration": "debug", "options": {"send_clear": "yes"}},
            "true or false",
        ),
        ({"id": "a/b", "integration": "debug"}, "no '/'"),
    ):
        resp = client.post("/api/v1/notifications", body)
        assert resp.status_code == 422, resp.text
        assert words in resp.json()["detail"]


def test_api_created_objects_open_incidents(client: Client) -> None:
    trigger, notif = unique("api-trig"), unique("api-notif")
    assert (
        client.post(
            "/api/v1/triggers", {"id": trigger, "when": {"device": {"_m": "^cfg-"}}}
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/notifications", {"id": notif, "integration": "debug", "triggers": [trigger]}
        ).status_code
        == 201
    )
    in_use = delete(client, f"/api/v1/triggers/{trigger}")
    assert in_use.status_code == 409 and notif in in_use.json()["detail"]

    # The API process sees the change at once; a worker that does not know the notification
    # yet reads its catalog again before it runs the action.
    ev = client.post(
        "/api/v1/events", {"device": unique("cfg"), "severity": 4, "summary": "api-made"}
    ).json()["eventId"]
    assert (
        wait_for(
            lambda: client.get(f"/api/v1/events/{ev}").json()["notificationId"],
            what="an incident of the API-made notification",
        )
        == notif
    )


def test_roles_and_manual_use(client: Client) -> None:
    manager = as_key(client, "manager-key")
    assert manager.get("/api/v1/triggers").status_code == 200
    assert as_key(client, "ingest-key").get("/api/v1/triggers").status_code == 403
    oncall = as_key(client, "oncall-key")
    assert oncall.get("/api/v1/notifications").status_code == 403
    manual = oncall.get("/api/v1/notifications", params={"manual": "true"})
    assert manual.status_code == 200
    assert [n["id"] for n in manual.json()["items"]] == ["file-notification"]
    assert manual.json()["items"][0]["config"]["proxy"] == "********"
    visitor = as_key(client, "visitor-key").get("/api/v1/notifications?manual=true").json()
    assert visitor["items"] == []
    admin_ids = {n["id"] for n in client.get("/api/v1/notifications?manual=true").json()["items"]}
    assert "file-notification" in admin_ids and "file-hidden" not in admin_ids


def cli(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "import sys; from incman.cli import main; sys.exit(main())"]
    return subprocess.run(
        [*command, *args],
        env={**stack.env, "INCMAN_URL": stack.url, "INCMAN_API_KEY": "manager-key"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_apply_list_show(stack: Any, tmp_path: Path) -> None:
    trigger, notif = unique("cli-trig"), unique("cli-notif")
    triggers = tmp_path / "triggers.json"
    triggers.write_text(json.dumps([{"id": trigger, "when": {"severity": {"_gte": 5}}}]))
    first = cli(stack, "trigger", "apply", "-f", str(triggers))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"trigger {trigger}: created"
    assert (
        cli(stack, "trigger", "apply", "-f", str(triggers)).stdout.strip()
        == f"trigger {trigger}: updated"
    )
    notifs = tmp_path / "notifications.yaml"
    notifs.write_text(
        yaml.safe_dump(
            {
                "notifications": [
                    {
                        "id": notif,
                        "integration": "debug",
                        "triggers": [trigger],
                        "config": {"proxy": "http://u:cli-secret@proxy:3128"},
                    },
                    {"id": "file-notification", "integration": "debug"},
                ]
            }
        )
    )
    applied = cli(stack, "notification", "apply", "-f", str(notifs))
    assert applied.returncode == 1
    assert f"notification {notif}: created" in applied.stdout
    assert "read-only" in applied.stderr
    listed = cli(stack, "notification", "list").stdout
    assert f"{notif}  debug  enabled  api" in listed
    assert "file-notification  debug  enabled  file" in listed
    shown = cli(stack, "notification", "show", notif)
    assert shown.returncode == 0 and "cli-secret" not in shown.stdout
    assert yaml.safe_load(shown.stdout)["config"]["proxy"] == "********"
    # What `show` prints can be applied again without losing the secret.
    (tmp_path / "again.yaml").write_text(shown.stdout)
    assert cli(stack, "notification", "apply", "-f", str(tmp_path / "again.yaml")).returncode == 0
    assert stored_config(notif)["proxy"] == "http://u:cli-secret@proxy:3128"
    assert cli(stack, "notification", "delete", notif).returncode == 0
    missing = cli(stack, "notification", "show", notif)
    assert missing.returncode == 1 and "404" in missing.stderr  # a failed operation


def test_rate_limit_answers_429_with_retry_after(client: Client) -> None:
    burst = as_key(client, "burst-key")
    codes = []
    retry_after = None
    for _ in range(90):
        resp = burst.post("/api/v1/alertmanager", {"alerts": []})
        codes.append(resp.status_code)
        if resp.status_code == 429:
            retry_after = resp.headers["Retry-After"]
    assert 429 in codes and codes[0] == 200
    assert retry_after is not None and 1 <= int(retry_after) <= 5
    # Another key is counted on its own.
    assert (
        as_key(client, "ingest-key").post("/api/v1/alertmanager", {"alerts": []}).status_code == 200
    )


def test_objects_with_typos_are_refused_with_every_problem(client: Client) -> None:
    """The configuration file's schema, over the API: 422 naming each problem with its path
    and a suggestion, and nothing stored."""
    ident = unique("typo")
    bad = client.post(
        "/api/v1/triggers",
        {"id": ident, "when": {"sevrity": {"_gte": 4}, "device": {"_like": "x"}}},
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["problems"] == [
        {"path": "when.sevrity", "message": "unknown field (did you mean 'severity'?)"},
        {"path": "when.device", "message": bad.json()["problems"][1]["message"]},
    ]
    assert "unknown operator '_like'" in bad.json()["problems"][1]["message"]
    assert bad.json()["field"] == "when.sevrity"
    assert client.get(f"/api/v1/triggers/{ident}").status_code == 404

    body = {
        "id": ident,
        "integration": "servicenow",
        "triger": ["file-trigger"],
        "triggers": ["file-triger"],
        "config": {"username": "incman", "pasword": "s3cret"},
        "options": {"send_cleer": True},
    }
    for resp in (
        client.post("/api/v1/notifications", body),
        put(client, f"/api/v1/notifications/{ident}", body),
    ):
        assert resp.status_code == 422, resp.text
        assert [f"{p['path']}: {p['message']}" for p in resp.json()["problems"]] == [
            "triger: unknown key (did you mean 'triggers'?)",
            "config.pasword: unknown key (did you mean 'password'?)",
            "config.url: is required",
            "options.send_cleer: unknown key (did you mean 'send_clear'?)",
            "triggers: unknown trigger 'file-triger' (did you mean 'file-trigger'?)",
        ]
    assert client.get(f"/api/v1/notifications/{ident}").status_code == 404
    fixed = {
        "id": ident,
        "integration": "debug",
        "triggers": ["file-trigger"],
        "config": {"answer_delay": "${env:NO_SUCH_DELAY}"},  # a reference stands for a value
    }
    assert put(client, f"/api/v1/notifications/{ident}", fixed).status_code == 201
    assert delete(client, f"/api/v1/notifications/{ident}").status_code == 204
