"""deploy/ stays true to the routes: every queue has a worker in compose, systemd and the docs."""

from __future__ import annotations

import configparser
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from workers.routes import all_queue_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD = DEPLOY / "systemd"
FIX = "run `python deploy/generate.py`"


def load_generate() -> ModuleType:
    """deploy/generate.py, a script rather than a package module."""
    if "deploy_generate" in sys.modules:
        return sys.modules["deploy_generate"]
    spec = importlib.util.spec_from_file_location("deploy_generate", DEPLOY / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return doc["services"]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def repeated(name: str, key: str) -> list[str]:
    """Every value of a key systemd allows more than once (configparser keeps the last)."""
    lines = (SYSTEMD / name).read_text().splitlines()
    return [line.split("=", 1)[1].strip() for line in lines if line.startswith(f"{key}=")]


def argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list), f"command must be an argument list: {command!r}"
    return [str(part) for part in command]


def celery_queues(args: list[str]) -> list[str]:
    """The queues a `celery ... worker -Q a,b` command consumes."""
    if "worker" not in args or "-Q" not in args:
        return []
    return args[args.index("-Q") + 1].split(",")


def worker_services(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {
        name: argv(svc)
        for name, svc in services.items()
        if "command" in svc and "worker" in argv(svc)
    }


def test_every_queue_has_a_worker_service(services: dict[str, dict[str, Any]]) -> None:
    served = {q for args in worker_services(services).values() for q in celery_queues(args)}
    missing = [q for q in all_queue_names() if q not in served]
    assert not missing, f"deploy/docker-compose.yml has no worker for {missing}: {FIX}"
    gone = sorted(served - set(all_queue_names()))
    assert not gone, f"deploy/docker-compose.yml has workers for unknown queues {gone}: {FIX}"


def test_generated_parts_are_current() -> None:
    stale = load_generate().stale_files(all_queue_names())
    assert not stale, f"{[p.name for p in stale]} are stale: {FIX}"


def test_every_worker_runs_the_incman_app(services: dict[str, dict[str, Any]]) -> None:
    workers = worker_services(services)
    assert workers
    for name, args in workers.items():
        assert args[:3] == ["celery", "-A", "workers.app"], f"{name}: {args}"
        assert len(celery_queues(args)) == 1, f"{name}: one queue per worker service"


def test_api_beat_flower_and_migrate_services(services: dict[str, dict[str, Any]]) -> None:
    assert argv(services["api"])[:4] == ["incman", "api", "--host", "0.0.0.0"]
    assert "INCMAN_API_KEYS" in services["api"]["environment"]
    assert argv(services["beat"])[:4] == ["celery", "-A", "workers.app", "beat"]
    assert argv(services["flower"])[:4] == ["celery", "-A", "workers.app", "flower"]
    assert "--port=5555" in argv(services["flower"])
    assert argv(services["migrate"]) == ["incman", "db", "upgrade"]
    assert {"postgres", "redis"} <= set(services)
    # Every incman process waits for the migrations, and they wait for PostgreSQL.
    for name in ["api", "beat", "flower", *worker_services(services)]:
        assert "migrate" in services[name]["depends_on"], name
    assert "postgres" in services["migrate"]["depends_on"]


def test_service_names_match_the_generator(services: dict[str, dict[str, Any]]) -> None:
    generate = load_generate()
    for name, args in worker_services(services).items():
        assert name == generate.service_name(celery_queues(args)[0])
    assert generate.service_name("itsm.servicenow") == "worker-itsm-servicenow"


def test_systemd_worker_template_takes_the_queue_from_the_instance() -> None:
    service = unit("incman-worker@.service")["Service"]
    exec_start = service["ExecStart"].split()
    assert exec_start[0].endswith("/celery")
    assert exec_start[1:4] == ["-A", "workers.app", "worker"]
    assert exec_start[exec_start.index("-Q") + 1] == "%i"
    assert repeated("incman-worker@.service", "EnvironmentFile") == [
        "/etc/incman/incman.env",
        "-/etc/incman/worker-%i.env",
    ]
    assert service["KillMode"] == "mixed"


@pytest.mark.parametrize(
    "name, command",
    [
        ("incman-api.service", ["incman", "api", "--host", "0.0.0.0"]),
        ("incman-beat.service", ["celery", "-A", "workers.app", "beat"]),
        ("incman-flower.service", ["celery", "-A", "workers.app", "flower", "--port=5555"]),
        ("incman-migrate.service", ["incman", "db", "upgrade"]),
    ],
)
def test_systemd_units(name: str, command: list[str]) -> None:
    service = unit(name)["Service"]
    words = service["ExecStart"].split()
    assert Path(words[0]).name == command[0]
    assert words[1 : len(command)] == command[1:]
    assert service["EnvironmentFile"] == "/etc/incman/incman.env"
    assert service["User"] == "incman"


def test_the_readme_lists_a_worker_unit_per_queue() -> None:
    listed = set(
        re.findall(
            r"^systemctl enable --now incman-worker@(\S+)$",
            (DEPLOY / "README.md").read_text(),
            re.MULTILINE,
        )
    )
    missing = [q for q in all_queue_names() if q not in listed]
    assert not missing, f"deploy/README.md lists no incman-worker@ unit for {missing}: {FIX}"


def test_the_generator_renders_a_new_integration_queue() -> None:
    generate = load_generate()
    queues = [*all_queue_names(), "itsm.example"]
    section = generate.SECTIONS[0]
    text = generate.replace_section(section.path.read_text(), section, queues)
    doc = yaml.safe_load(text)
    args = argv(doc["services"]["worker-itsm-example"])
    assert celery_queues(args) == ["itsm.example"]
    # The hand-written services are kept as they are.
    assert doc["services"]["api"] == yaml.safe_load(section.path.read_text())["services"]["api"]
    stale = set(generate.stale_files(queues))
    assert {generate.COMPOSE, generate.README} <= stale
    # ...and its Kubernetes pool with its autoscaler, for either broker.
    kubernetes = {p for p in stale if "kubernetes" in p.parts}
    assert {p.name for p in kubernetes} == {"workers.yaml", "keda-redis.yaml", "keda-rabbitmq.yaml"}
    texts = generate.rendered(queues)
    for path in kubernetes:
        assert "itsm.example" in texts[path], path


COMPOSE_TOP = {"name", "services", "volumes", "networks", "secrets", "configs"}
COMPOSE_SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "volumes",
    "ports",
    "depends_on",
    "restart",
    "healthcheck",
    "labels",
    "networks",
    "user",
    "working_dir",
}
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+x}, $NAME
# or $$; what follows a modifier may not hold another `$` or a brace.
INTERPOLATION = re.compile(
    r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+])[^${}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*"
)


def compose_text() -> str:
    return (DEPLOY / "docker-compose.yml").read_text()


def test_compose_file_is_well_formed() -> None:
    """What `docker compose config` checks first (it cannot run here): the top-level and
    service keys, references between services and volumes, and every `$` interpolation."""
    doc = yaml.safe_load(compose_text())
    assert set(k for k in doc if not k.startswith("x-")) <= COMPOSE_TOP
    volumes = set(doc.get("volumes") or {})
    for name, service in doc["services"].items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, (name, set(service) - COMPOSE_SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        for other in service.get("depends_on", {}):
            assert other in doc["services"], f"{name} depends on unknown {other}"
        for mount in service.get("volumes", []):
            source = str(mount).split(":")[0]
            if not source.startswith(("/", ".", "$")):
                assert source in volumes, f"{name}: volume {source} is not declared"
    for number, line in enumerate(compose_text().splitlines(), 1):
        code = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
        leftover = INTERPOLATION.sub("", code)
        assert "$" not in leftover, f"docker-compose.yml:{number}: bad interpolation: {line}"


def test_every_compose_service_signs_links_with_the_same_key(
    services: dict[str, dict[str, Any]],
) -> None:
    incman = {n: s for n, s in services.items() if s.get("image", "").startswith("${INCMAN_IMAGE")}
    assert {"api", "beat", "flower", "migrate"} <= set(incman)
    keys = {
        name: service["environment"].get("INCMAN_SECRET_KEY") for name, service in incman.items()
    }
    assert len(set(keys.values())) == 1 and None not in keys.values(), keys
    assert next(iter(keys.values())).startswith("${INCMAN_SECRET_KEY:?")


def test_compose_header_names_every_required_setting() -> None:
    header = "\n".join(line for line in compose_text().splitlines() if line.startswith("#"))
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", compose_text()))
    assert required >= {"INCMAN_API_KEYS", "INCMAN_SECRET_KEY", "FLOWER_BASIC_AUTH"}
    for name in required:
        assert f"export {name}=" in header, f"the header does not say how to set {name}"


def test_files_named_in_deploy_comments_exist() -> None:
    root = DEPLOY.parent
    for path in [*SYSTEMD.iterdir(), DEPLOY / "incman.example.yaml", DEPLOY / "docker-compose.yml"]:
        comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
        for name in re.findall(r"\b([\w./-]+\.md)\b", "\n".join(comments)):
            assert (root / name).exists() or (DEPLOY / name).exists(), f"{path.name}: {name}"
