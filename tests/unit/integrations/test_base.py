"""The plugin contract's base: the config class named once as the type argument, lacking
capabilities refused, the default fields."""

from __future__ import annotations

import pytest

from incman.integrations.base import ALL_CAPABILITIES, CREATE, Integration, RemoteIncident
from incman.integrations.config import IntegrationConfig, setting
from incman.integrations.errors import ConfigurationError, NotSupported


class AcmeConfig(IntegrationConfig):
    project: str = setting(required=True, help="where tickets go")


class Acme(Integration[AcmeConfig]):
    name = "acme"
    capabilities = frozenset({CREATE})


class Bare(Integration):  # type: ignore[type-arg]
    name = "bare"


def test_the_config_class_is_the_type_argument() -> None:
    assert Acme.config_class is AcmeConfig
    plugin = Acme({"project": "OPS", "timeout": "5", "proxy": "http://p:3128"})
    assert (plugin.cfg.project, plugin.cfg.timeout) == ("OPS", 5.0)
    client = plugin.http
    assert client.timeout == 5.0 and client.session.proxies["https"] == "http://p:3128"
    assert client.authenticator is plugin


def test_a_plugin_without_its_own_config_takes_the_shared_keys_only() -> None:
    assert Bare.config_class is IntegrationConfig
    Bare({"timeout": 3})
    with pytest.raises(ConfigurationError, match=r"bare: config\.project: unknown key"):
        Bare({"project": "OPS"})


def test_every_capability_it_lacks_is_refused_by_name() -> None:
    plugin = Acme({"project": "OPS"})
    ref = RemoteIncident("1", "1")
    assert plugin.supports(CREATE) and not plugin.supports("status")
    calls = [
        lambda: plugin.find("k"),
        lambda: plugin.find_by_number("1"),
        lambda: plugin.update(ref, {}),
        lambda: plugin.add_note(ref, "x"),
        lambda: plugin.assign(ref, "x"),
        lambda: plugin.close(ref, "x"),
        lambda: plugin.reopen(ref, "x"),
        lambda: plugin.get_status([ref]),
    ]
    assert len(calls) == len(ALL_CAPABILITIES - {CREATE})
    for call in calls:
        with pytest.raises(NotSupported, match=r"^acme cannot"):
            call()


@pytest.mark.parametrize(("severity", "name"), [(5, "Critical"), (3, "Warning"), (9, "9")])
def test_default_fields(severity: int, name: str) -> None:
    fields = Acme({"project": "P"}).default_fields(
        {"summary": "s", "severity": severity, "device": "d"}, None, {"eventUrl": "u"}
    )
    assert (fields["summary"], fields["description"], fields["severityName"]) == ("s", "s", name)
    assert (fields["device"], fields["eventUrl"]) == ("d", "u")
