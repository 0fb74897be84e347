"""The egress policy of the one HTTP client, against real servers on loopback: refused by
default on the resolved address (a literal, a name, a redirect hop), allowed by
INCMAN_EGRESS_ALLOW, and never connected to an address it has not just checked."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from incman.cli import main
from incman.integrations.egress import EgressPolicy, refused_because
from incman.integrations.errors import ConfigurationError, EgressRefused, public_reason
from incman.integrations.http import HttpClient
from incman.integrations.slack import SlackIntegration
from incman.settings import reset_settings


class _Handler(http.server.BaseHTTPRequestHandler):
    """`/to?url=U` answers 302 to U; anything else 200 `ok`. Every path is recorded."""

    def do_GET(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/to?url="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        pass


class Server:
    def __init__(self, host: str) -> None:
        self.httpd = http.server.ThreadingHTTPServer((host, 0), _Handler)
        self.httpd.seen = []  # type: ignore[attr-defined]
        self.port = self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def seen(self) -> list[str]:
        return self.httpd.seen  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[[str], Server]]:
    made: list[Server] = []

    def make(host: str) -> Server:
        made.append(Server(host))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def no_allowance(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The default policy, as a deployment without INCMAN_EGRESS_ALLOW has it."""
    monkeypatch.delenv("INCMAN_EGRESS_ALLOW", raising=False)
    reset_settings()
    yield
    reset_settings()


def test_loopback_and_metadata_are_refused_by_default(
    servers: Callable[[str], Server], no_allowance: None
) -> None:
    server = servers("127.0.0.1")
    client = HttpClient(timeout=5)
    for url in (
        f"http://127.0.0.1:{server.port}/x",
        f"http://localhost:{server.port}/x",  # a name that resolves to loopback
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:1/",
        "http://0.0.0.0:1/",
    ):
        with pytest.raises(EgressRefused, match="refused by the egress policy") as caught:
            client.request("GET", url)
        assert isinstance(caught.value, ConfigurationError)  # permanent: never retried
        assert caught.value.status is None
    assert server.seen == []  # nothing reached the server
    assert "localhost resolves to 127.0.0.1 (loopback)" in _refusal(
        client, f"http://localhost:{server.port}/"
    )
    assert "169.254.169.254 is 169.254.169.254 (link-local, where cloud metadata lives)" in (
        _refusal(client, "http://169.254.169.254/")
    )


def _refusal(client: HttpClient, url: str) -> str:
    with pytest.raises(EgressRefused) as caught:
        client.request("GET", url)
    return str(caught.value)


def test_the_setting_allows_networks_and_names(
    servers: Callable[[str], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = servers("127.0.0.1")
    monkeypatch.setenv("INCMAN_EGRESS_ALLOW", "127.0.0.1/32")
    reset_settings()
    assert HttpClient(timeout=5).request("GET", f"http://127.0.0.1:{server.port}/a").text == "ok"
    by_name = HttpClient(timeout=5, egress=EgressPolicy.from_setting("localhost"))
    assert by_name.request("GET", f"http://localhost:{server.port}/b").text == "ok"
    with pytest.raises(EgressRefused):  # a name allowed is that name, not its address
        by_name.request("GET", f"http://127.0.0.1:{server.port}/c")
    assert server.seen == ["/a", "/b"]


def test_every_redirect_hop_is_checked(servers: Callable[[str], Server]) -> None:
    allowed, inside = servers("127.0.0.2"), servers("127.0.0.1")
    client = HttpClient(timeout=5, egress=EgressPolicy.from_setting("127.0.0.2"))
    hop = f"http://127.0.0.2:{allowed.port}/to?url=http://127.0.0.1:{inside.port}/secret"
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 is 127\.0\.0\.1 \(loopback\)"):
        client.request("GET", hop)
    assert allowed.seen == [hop.split(str(allowed.port))[1]] and inside.seen == []
    with pytest.raises(EgressRefused, match="cloud metadata"):
        client.request("GET", f"http://127.0.0.2:{allowed.port}/to?url=http://169.254.169.254/")
    # A hop the policy allows is followed.
    fine = f"http://127.0.0.2:{allowed.port}/to?url=http://127.0.0.2:{allowed.port}/fine"
    assert client.request("GET", fine).text == "ok"


def test_a_rebinding_name_is_connected_only_where_it_was_checked(
    servers: Callable[[str], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each connection resolves once and connects to what it checked: a name whose answers
    change (an allowed address, then loopback) never gets a connection to loopback, and an
    answer mixing both connects to the allowed one."""
    allowed, inside = servers("127.0.0.2"), servers("127.0.0.1")
    real = socket.getaddrinfo
    answers = [["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1", "127.0.0.2"]]

    def resolver(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        wanted = answers.pop(0)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in wanted]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    # Each request names the port of the server the answer it will get points to.
    client = HttpClient(timeout=5, egress=EgressPolicy.from_setting("127.0.0.2"))
    assert client.request("GET", f"http://rebind.test:{allowed.port}/first").text == "ok"
    with pytest.raises(EgressRefused):
        client.request("GET", f"http://rebind.test:{inside.port}/second")
    assert client.request("GET", f"http://rebind.test:{allowed.port}/third").text == "ok"
    assert allowed.seen == ["/first", "/third"] and inside.seen == []


def test_a_proxy_on_loopback_is_refused(no_allowance: None) -> None:
    client = HttpClient(timeout=5, proxy="http://127.0.0.1:3128")
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 is 127\.0\.0\.1"):
        client.request("GET", "http://example.invalid/")
    # A proxy the policy allows: the target it would connect to is checked here.
    proxied = HttpClient(
        timeout=5, proxy="http://127.0.0.1:3128", egress=EgressPolicy.from_setting("127.0.0.1")
    )
    with pytest.raises(EgressRefused, match=r"169\.254\.169\.254 is"):
        proxied.request("GET", "http://169.254.169.254/")


def test_a_plugin_refuses_before_sending(no_allowance: None) -> None:
    plugin = SlackIntegration({"api_url": "http://127.0.0.1:9/api", "token": "t", "channel": "C1"})
    with pytest.raises(EgressRefused) as caught:
        plugin.add_note(plugin_ref(), "x")
    assert public_reason(caught.value) == "refused by the egress policy (INCMAN_EGRESS_ALLOW)"


def plugin_ref() -> Any:
    from incman.integrations.base import RemoteIncident

    return RemoteIncident(remote_id="C1:1.0", number="1.0")


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.5", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local, where cloud metadata lives"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("0.0.0.0", "the unspecified address"),
        ("::", "the unspecified address"),
        ("224.0.0.1", "multicast"),
        ("::ffff:169.254.169.254", "link-local, where cloud metadata lives"),
        ("10.1.2.3", None),  # private ranges: where ticketing systems live on premises
        ("172.16.0.9", None),
        ("192.168.1.10", None),
        ("fd12::1", None),
        ("93.184.216.34", None),
    ],
)
def test_what_the_default_policy_refuses(address: str, reason: str | None) -> None:
    assert refused_because(ipaddress.ip_address(address)) == reason


def test_a_bad_allowance_stops_every_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INCMAN_EGRESS_ALLOW", "10.0.0.0/33")
    reset_settings()
    assert main(["config", "check", "x.yaml"]) == 2
    assert "INCMAN_EGRESS_ALLOW: '10.0.0.0/33' is neither a CIDR nor a host name" in (
        capsys.readouterr().err
    )
    reset_settings()
