"""Structured logs: INCMAN_LOG_FORMAT=json lines carry the context of the action at hand
(set once, not passed around), access lines have their own fields, keys in URLs are redacted;
the text format shows the same context. Each case runs in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from incman.logs import bind_log, log_context, setup_logging

    setup_logging(sys.argv[1], "WARNING", access_log=True)
    log = logging.getLogger("incman.actions.run")
    log.info("hidden: below the level")
    logging.getLogger("incman.activity").info("event %s accepted", "e1")
    with log_context(actionId=7):
        bind_log(action="close", notificationId="snow", eventId="e1", incidentId="i1")
        bind_log(correlationKey="ck1", incident="INC001")
        log.warning("retry in %ss", 3)
    log.warning("after the action")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/api/v1/events?api_key=s3cret", "1.1", 200
    )
    logging.getLogger("uvicorn.error").info("Started server process")
    """
)


def run(fmt: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.strip().splitlines()


def test_json_lines_carry_the_action_context() -> None:
    lines: list[dict[str, Any]] = [json.loads(line) for line in run("json")]
    messages = [line["message"] for line in lines]
    assert "hidden: below the level" not in messages
    assert "Started server process" not in messages  # uvicorn's chatter only from WARNING
    activity, retry, after, access = lines
    assert activity["logger"] == "incman.activity" and activity["message"] == "event e1 accepted"
    assert retry["message"] == "retry in 3s" and retry["level"] == "WARNING"
    assert {k: retry[k] for k in ("eventId", "incidentId", "notificationId", "action")} == {
        "eventId": "e1",
        "incidentId": "i1",
        "notificationId": "snow",
        "action": "close",
    }
    assert (retry["actionId"], retry["correlationKey"], retry["incident"]) == (7, "ck1", "INC001")
    assert "eventId" not in after and "actionId" not in after  # the context ended with the block
    assert access["method"] == "GET" and access["status"] == 200
    assert access["path"] == "/api/v1/events?api_key=***"
    assert "s3cret" not in json.dumps(access)


def test_text_lines_show_the_same_context() -> None:
    lines = run("text")
    retry = next(line for line in lines if "retry in 3s" in line)
    assert retry.endswith(
        "[eventId=e1 incidentId=i1 incident=INC001 notificationId=snow action=close actionId=7 "
        "correlationKey=ck1]"
    )
    assert "s3cret" not in "\n".join(lines)
