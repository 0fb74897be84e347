"""The event console in a real browser (Chromium through Playwright) against a real API,
Celery worker and PostgreSQL, with the ServiceNow simulator as the remote system."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from browser import (
    artifacts_dir,
    csrf_of,
    flash_text,
    launch,
    need_browser,
    shot,
    sign_in,
    submit,
)
from helpers import API_KEY, Client, unique, wait_for

from incman.api.console.passwords import hash_password
from incman.testing.servicenow_sim import ServiceNowSim
from incman.testing.simbase import SimControl, SimServer

SNOW_PASSWORD = "Sn0w-Console-4b1d"
OPERATOR_PASSWORD = "oper-Pa55-console"
VIEWER_PASSWORD = "view-Pa55-console"
MANAGER_PASSWORD = "mgr-Pa55-console"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimControl]:
    with SimServer(ServiceNowSim(password=SNOW_PASSWORD)) as server:
        yield SimControl(server.url)


def _snow(nid: str, url: str, password: str = SNOW_PASSWORD, **extra: Any) -> dict[str, Any]:
    return {
        "id": nid,
        "integration": "servicenow",
        "triggers": ["by-hand"],
        "config": {"url": url, "username": "incman", "password": password, "timeout": 5},
        **extra,
    }


@pytest.fixture(scope="module")
def stack(make_stack: Any, sim: SimControl) -> Any:
    need_browser()
    # An enabled trigger that matches nothing: incidents are made by hand, and follow their
    # events (send_clear + an enabled trigger, the seed's rule for manual incidents).
    config = {
        "triggers": [{"id": "by-hand", "when": {"device": {"_m": "^never-matches-"}}}],
        "notifications": [
            _snow(
                "snow-console",
                sim.url,
                subscribers=["ops-team"],
                options={"one_incident_per_event": False, "send_clear": True},
            ),
            _snow("snow-secret", sim.url, subscribers=["oncall1"], options={"hidden": True}),
            _snow("snow-others", sim.url, subscribers=["someone-else"]),
            _snow("snow-broken", sim.url, password="wrong-password", subscribers=["boss"]),
        ],
        "users": [
            {
                "name": "oncall1",
                "role": "operator",
                "groups": ["ops-team"],
                "password_hash": hash_password(OPERATOR_PASSWORD),
            },
            {"name": "watcher", "role": "viewer", "password_hash": hash_password(VIEWER_PASSWORD)},
            {"name": "boss", "role": "manager", "password_hash": hash_password(MANAGER_PASSWORD)},
        ],
    }
    return make_stack(config)


@pytest.fixture(scope="module")
def context(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from launch(tmp_path_factory.mktemp("chromium-profile"))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_dir(tmp_path_factory.getbasetemp())


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert not errors, f"script errors on the page: {errors}"


def _events(client: Client, prefix: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = client.post(
            "/api/v1/events",
            {
                "device": f"{prefix}-{i}",
                "component": "disk",
                "eventClass": "/Perf/Disk",
                "severity": 5 - i % 3,
                "summary": f"Disk full on /var ({prefix} {i})",
            },
        )
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["eventId"])
    return ids


def _show(page: Any, stack: Any, prefix: str) -> None:
    page.goto(f"{stack.url}/console/events?q={prefix}")


def _select(page: Any, event_ids: list[str]) -> None:
    for event_id in event_ids:
        page.check(f'input[name="event_id"][value="{event_id}"]')


def _incident_cell(page: Any, event_id: str) -> Any:
    return page.locator(f'tr[data-event-id="{event_id}"] td.incident')


def _record(sim: SimControl, number: str) -> dict[str, Any]:
    found = [r for r in sim.state()["incidents"] if r["number"] == number]
    assert found, f"{number} is not in the simulator"
    return found[0]


def test_create_one_incident_for_two_selected_events(
    stack: Any, sim: SimControl, page: Any, shots: Path
) -> None:
    prefix = unique("cons-create")
    ids = _events(stack.client, prefix, 2)
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    _show(page, stack, prefix)
    _select(page, ids)
    page.click("#create-menu-button")
    shot(page, shots, "events-create-incident-menu")
    submit(
        page, page.locator('#create-menu-list button[name="notification"][value="snow-console"]')
    )
    message = flash_text(page)
    number = re.search(r"Created (INC\d+) on snow-console for 2 events", message)
    assert number, message
    links = [_incident_cell(page, i).get_by_role("link") for i in ids]
    assert [link.inner_text() for link in links] == [number[1], number[1]]
    record = _record(sim, number[1])
    href = links[0].get_attribute("href")
    assert href == f"{sim.url}/incident.do?sys_id={record['sys_id']}"
    shot(page, shots, "events-after-create")
    with page.context.expect_page() as opened:
        links[1].click()
    ticket = opened.value
    ticket.wait_for_load_state()
    assert f"Incident {number[1]}" in ticket.inner_text("h1")
    shot(ticket, shots, "remote-ticket-page")
    ticket.close()


def test_associate_a_typed_number_then_acknowledge_reaches_the_ticket(
    stack: Any, sim: SimControl, page: Any, shots: Path
) -> None:
    prefix = unique("cons-assoc")
    probe, *ids = _events(stack.client, prefix, 3)
    existing = requests.post(
        f"{sim.url}/api/now/table/incident",
        json={"short_description": "Opened by a person in ServiceNow"},
        auth=("incman", SNOW_PASSWORD),
        timeout=10,
    ).json()["result"]
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    _show(page, stack, prefix)

    # A number the remote does not know is refused, and the page says why.
    _select(page, [probe])
    page.click("#create-menu-button")
    page.click('[data-associate="snow-console"]')
    page.fill("#incident-number", "INC0999999")
    shot(page, shots, "events-assign-new-incident-number")
    submit(page, page.locator("#associate-dialog button[type=submit]"))
    refused = flash_text(page)  # a number the remote does not know is looked up and refused
    assert "Not associated with INC0999999 on snow-console" in refused, refused
    assert page.locator("#flash").get_attribute("role") == "alert"
    shot(page, shots, "events-associate-refused")

    _select(page, ids)
    page.click("#create-menu-button")
    page.click('#create-menu-list [data-notification="snow-console"]', button="right")
    assert page.locator("#associate-target").inner_text() == "snow-console"
    page.fill("#incident-number", existing["number"])
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the dialog's OK, not the form's first button
    assert f"2 events associated with {existing['number']}" in flash_text(page)
    for event_id in ids:
        link = _incident_cell(page, event_id).get_by_role("link")
        assert link.inner_text() == existing["number"]
        assert link.get_attribute("href") == f"{sim.url}/incident.do?sys_id={existing['sys_id']}"
    shot(page, shots, "events-after-associate")
    _select(page, ids[:1])
    submit(page, page.get_by_role("button", name="Acknowledge", exact=True))
    assert f"{existing['number']} (snow-console) follows" in flash_text(page)
    wait_for(
        lambda: _record(sim, existing["number"])["assigned_to_name"] == "Oncall1",
        what="the acknowledgement to assign the ticket",
    )


def test_acknowledge_note_close_reopen_from_the_page_reach_the_ticket(
    stack: Any, sim: SimControl, page: Any, shots: Path
) -> None:
    prefix = unique("cons-life")
    (event_id,) = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    _show(page, stack, prefix)
    _select(page, [event_id])
    page.click("#create-menu-button")
    submit(page, page.locator('#create-menu-list button[value="snow-console"]'))
    number = re.search(r"Created (INC\d+)", flash_text(page))
    assert number, flash_text(page)
    ticket = number[1]

    _select(page, [event_id])
    submit(page, page.get_by_role("button", name="Acknowledge", exact=True))
    assert f"{ticket} (snow-console) follows (assign" in flash_text(page)
    wait_for(lambda: _record(sim, ticket)["assigned_to_name"] == "Oncall1", what="assigned")

    page.goto(f"{stack.url}/console/events/{event_id}")
    page.click("text=Add note…")
    page.fill("#note-text", "Disk cleaned up by the on-call")
    submit(page, page.get_by_role("button", name="Add note", exact=True))
    assert "note added" in flash_text(page)

    def noted() -> bool:
        journal = _record(sim, ticket)["journal"]
        return any("Disk cleaned up by the on-call" in j["value"] for j in journal)

    wait_for(noted, what="the note in the ticket's work notes")

    submit(page, page.get_by_role("button", name="Close", exact=True))
    assert f"{ticket} (snow-console) follows (close" in flash_text(page)
    wait_for(lambda: _record(sim, ticket)["state"] in ("6", "7"), what="the ticket resolved")

    submit(page, page.get_by_role("button", name="Re-open", exact=True))
    assert f"{ticket} (snow-console) follows (reopen" in flash_text(page)
    wait_for(lambda: _record(sim, ticket)["state"] == "2", what="the ticket in progress again")

    def actions_done() -> bool:
        page.reload()
        statuses = page.locator("table.actions td .status").all_inner_texts()
        return len(statuses) >= 5 and set(statuses) == {"done"}

    wait_for(actions_done, what="every action shown done on the event page")
    assert "Disk cleaned up by the on-call" in page.inner_text("main")
    shot(page, shots, "event-detail")


def test_a_viewer_sees_no_action_and_is_refused_when_it_posts(
    stack: Any, page: Any, shots: Path
) -> None:
    prefix = unique("cons-view")
    (event_id,) = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "watcher", VIEWER_PASSWORD)
    _show(page, stack, prefix)
    assert page.locator(f'tr[data-event-id="{event_id}"]').count() == 1
    for name in ("Acknowledge", "Close", "Re-open", "Add note…", "Create Incident ▾"):
        assert page.get_by_role("button", name=name, exact=True).count() == 0, name
    assert page.locator('input[name="event_id"]').count() == 0
    shot(page, shots, "events-as-viewer")
    page.goto(f"{stack.url}/console/events/{event_id}")
    assert page.get_by_role("button", name="Acknowledge", exact=True).count() == 0
    answer = page.request.post(
        f"{stack.url}/console/events/act",
        form={"csrf_token": csrf_of(page), "op": "acknowledge", "event_id": event_id},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "needs the role operator" in answer.text()
    assert stack.client.get(f"/api/v1/events/{event_id}").json()["status"] == "New"


def test_a_form_without_its_csrf_token_is_refused(stack: Any, page: Any) -> None:
    prefix = unique("cons-csrf")
    (event_id,) = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    url = f"{stack.url}/console/events/act"
    for form in (
        {"op": "acknowledge", "event_id": event_id},
        {"op": "acknowledge", "event_id": event_id, "csrf_token": "not-the-token"},
    ):
        answer = page.request.post(url, form=form, max_redirects=0)
        assert answer.status == 403
        assert "security token" in answer.text()
    assert stack.client.get(f"/api/v1/events/{event_id}").json()["status"] == "New"
    good = page.request.post(
        url,
        form={"op": "acknowledge", "event_id": event_id, "csrf_token": _token(page, stack)},
        max_redirects=0,
    )
    assert good.status == 303
    assert stack.client.get(f"/api/v1/events/{event_id}").json()["status"] == "Acknowledged"
    # The JSON API does not take the console's cookie: it still wants a key.
    assert page.request.get(f"{stack.url}/api/v1/events/{event_id}").status == 401
    assert page.request.post(f"{stack.url}/api/v1/events/{event_id}/close").status == 401


def _token(page: Any, stack: Any) -> str:
    page.goto(f"{stack.url}/console/events")
    return csrf_of(page)


def test_hidden_and_unsubscribed_notifications_never_appear_in_the_menu(
    stack: Any, page: Any
) -> None:
    prefix = unique("cons-hidden")
    (event_id,) = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    for url in (f"/console/events?q={prefix}", f"/console/events/{event_id}"):
        page.goto(stack.url + url)
        page.click("#create-menu-button")
        items = page.locator('#create-menu-list button[name="notification"]').all_inner_texts()
        assert items == ["snow-console"], items
        assert "snow-secret" not in page.content()
        assert "snow-others" not in page.content()
    # Posting the hidden one anyway is refused, with the reason.
    page.goto(f"{stack.url}/console/events?q={prefix}")
    answer = page.request.post(
        f"{stack.url}/console/incidents/create",
        form={"csrf_token": csrf_of(page), "event_id": event_id, "notification": "snow-secret"},
    )
    assert "hidden from manual use" in answer.text()
    answer = page.request.post(
        f"{stack.url}/console/incidents/associate",
        form={
            "csrf_token": csrf_of(page),
            "event_id": event_id,
            "assoc_notification": "snow-secret",
            "incident_number": "INC0010001",
        },
    )
    assert "Not associated with INC0010001 on snow-secret" in answer.text()
    assert "hidden from manual use" in answer.text()
    # An admin uses every notification by hand, still never a hidden one.
    sign_in(page, stack.url, key=API_KEY)
    page.goto(f"{stack.url}/console/events?q={prefix}")
    items = page.locator('#create-menu-list button[name="notification"]').all_inner_texts()
    assert sorted(items) == ["snow-broken", "snow-console", "snow-others"], items


def test_dead_letter_discard_by_a_manager(stack: Any, page: Any, shots: Path) -> None:
    prefix = unique("cons-dead")
    (event_id,) = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "boss", MANAGER_PASSWORD)
    _show(page, stack, prefix)
    _select(page, [event_id])
    page.click("#create-menu-button")
    submit(page, page.locator('#create-menu-list button[value="snow-broken"]'))

    def dead_row() -> Any:
        page.goto(f"{stack.url}/console/dead-letter")
        row = page.locator("tr", has=page.locator(f'a[href="/console/events/{event_id}"]'))
        return row if row.count() else None

    row = wait_for(dead_row, what="the failed creation in the dead letter")
    shot(page, shots, "dead-letter")
    assert "401" in row.inner_text() or "auth" in row.inner_text().lower()
    row.locator('input[name="action_id"]').check()
    submit(page, page.get_by_role("button", name="Discard", exact=True))
    assert "1 action(s) discarded" in flash_text(page)
    assert dead_row() is None


def test_every_page_renders(stack: Any, page: Any, shots: Path) -> None:
    prefix = unique("cons-pages")
    ids = _events(stack.client, prefix, 3)
    page.goto(f"{stack.url}/console/events")
    page.context.clear_cookies()
    page.goto(f"{stack.url}/console/events/{ids[0]}")
    assert "/console/login" in page.url  # a link from a ticket asks to sign in, then returns
    shot(page, shots, "sign-in")
    page.fill("#username", "oncall1")
    page.fill("#password", "not-the-password")
    submit(page, page.get_by_role("button", name="Sign in", exact=True))
    assert "Unknown user or wrong password" in page.inner_text("main")
    page.fill("#username", "oncall1")
    page.fill("#password", OPERATOR_PASSWORD)
    submit(page, page.get_by_role("button", name="Sign in", exact=True))
    assert urlsplit(page.url).path == f"/console/events/{ids[0]}"
    submit(page, page.get_by_role("button", name="Sign out"))
    assert "/console/login" in page.url
    page.goto(f"{stack.url}/console/incidents")
    assert "/console/login" in page.url  # signed out for good
    sign_in(page, stack.url, key=API_KEY)
    pages = {
        "events": "/console/events",
        "events-filtered": f"/console/events?q={prefix}&severity=4&sort=device&dir=asc",
        "device": f"/console/devices/{prefix}-0",
        "incidents": "/console/incidents",
        "configuration": "/console/config",
    }
    for name, url in pages.items():
        answer = page.goto(stack.url + url)
        assert answer is not None and answer.status == 200, (name, answer and answer.status)
        shot(page, shots, name)
    assert "********" in page.inner_text("main") and SNOW_PASSWORD not in page.content()
    page.goto(f"{stack.url}/console/incidents")
    first = page.locator("tbody tr td a").first
    if first.count():
        first.click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text().startswith("Incident")
        shot(page, shots, "incident-detail")


def test_the_events_table_refreshes_in_place(stack: Any, page: Any) -> None:
    prefix = unique("cons-live")
    first = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    _show(page, stack, prefix)
    _select(page, first)
    page.evaluate("window.__same_page = true")
    second = _events(Client(stack.url), f"{prefix}-b", 1)
    page.click("#refresh-button")
    page.locator(f'tr[data-event-id="{second[0]}"]').wait_for()
    assert page.evaluate("window.__same_page") is True  # no reload
    assert page.locator(f'input[value="{first[0]}"]').is_checked()  # the selection is kept
    assert page.inner_text("#selection-count") == "1 selected"


def test_the_api_docs_render_offline_and_authorize_works(
    stack: Any, page: Any, shots: Path
) -> None:
    own = urlsplit(stack.url).netloc
    outside: list[str] = []

    def only_incman(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_incman)
    page.goto(f"{stack.url}/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "incman" in page.inner_text(".swagger-ui .info .title")
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    dialog = page.locator(".modal-ux")
    for scheme in ("bearer", "zenossApiKey", "apiKeyQuery"):
        assert dialog.get_by_text(scheme).count() >= 1, scheme
    dialog.locator("input").first.fill(API_KEY)
    shot(page, shots, "api-docs-authorize")
    dialog.get_by_role("button", name="Apply credentials").first.click()
    dialog.get_by_role("button", name="Close", exact=True).first.click()
    block = page.locator("#operations-events-get_events_api_v1_events_get")
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    shot(page, shots, "api-docs")
    assert not outside, f"the docs page reached outside incman: {outside}"


def test_the_create_incident_menu_works_from_the_keyboard(stack: Any, page: Any) -> None:
    prefix = unique("cons-keys")
    (event_id,) = _events(stack.client, prefix, 1)
    sign_in(page, stack.url, "oncall1", OPERATOR_PASSWORD)
    _show(page, stack, prefix)
    page.focus(f'input[value="{event_id}"]')
    page.keyboard.press("Space")
    assert page.inner_text("#selection-count") == "1 selected"
    page.focus("#create-menu-button")
    page.keyboard.press("Enter")
    assert page.get_attribute("#create-menu-button", "aria-expanded") == "true"
    focused = "document.activeElement.textContent.trim()"
    assert page.evaluate(focused) == "snow-console"
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == "Associate…"
    page.keyboard.press("Escape")
    assert page.locator("#create-menu-list").is_hidden()
    assert page.evaluate("document.activeElement.id") == "create-menu-button"
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # Associate… opens the dialog, its field focused
    assert page.locator("#associate-dialog").is_visible()
    assert page.evaluate("document.activeElement.id") == "incident-number"
    page.keyboard.press("Escape")  # the dialog closes, nothing is sent
    assert page.locator("#associate-dialog").is_hidden()
    assert stack.client.get(f"/api/v1/events/{event_id}").json()["incidents"] == []
