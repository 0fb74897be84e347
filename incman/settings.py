"""Typed settings read from the environment, in one place (CONFIG.md's table)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Every environment setting of incman, with its default."""

    data_dir: Path = Path("./incman-data")
    database_url: str = ""
    broker_url: str = ""
    redis_url: str = ""
    config_path: str = ""
    api_keys: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    poll_cycletime: int = 60
    reconcile_after: int = 60
    poll_tick: float = 5.0
    aging_after: int = 14400
    aging_severity: int = 4
    retention_days: int = 90
    log_format: str = "text"
    log_level: str = "INFO"
    visibility_timeout: int = 300
    action_max_wait: int = 86400
    action_threads: int = 4  # INCMAN_ACTION_THREADS: remote calls of one batch side by side
    actions_per_message: int = 100  # INCMAN_ACTIONS_PER_MESSAGE: outbox actions per task
    secret_key: str = field(default="", repr=False)
    secrets_key: str = field(default="", repr=False)
    api_rate_limit: str = ""
    cli_url: str = ""
    cli_api_key: str = field(default="", repr=False)
    tls_certfile: str = ""
    tls_keyfile: str = ""
    access_log: bool = False
    egress_allow: str = ""  # INCMAN_EGRESS_ALLOW: CIDRs and host names remote calls may reach

    @property
    def embedded(self) -> bool:
        """True when no Redis service is named: `incman run` provides one."""
        return not self.redis_url

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "incman.db"

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis.sock"

    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path.resolve()}"

    def effective_redis_url(self) -> str:
        return self.redis_url or f"unix://{self.redis_socket.resolve()}"

    def effective_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        if self.redis_url:
            return self.redis_url
        return f"redis+socket://{self.redis_socket.resolve()}"


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "").strip() or default
    if raw.lower() not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw.lower()


EGRESS_SETTING = "INCMAN_EGRESS_ALLOW"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def parse_allowance(raw: str) -> tuple[tuple[IPNetwork, ...], tuple[str, ...]]:
    """INCMAN_EGRESS_ALLOW as (networks, host names): CIDRs or addresses, and host names
    (`*.example.com` for its subdomains); ValueError naming a bad entry
    (incman.integrations.egress applies them)."""
    networks: list[IPNetwork] = []
    hosts: list[str] = []
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        bare = name[2:] if name.startswith("*.") else name
        if not bare or not set(bare) <= _HOST_CHARS or bare.replace(".", "").isdigit():
            raise ValueError(f"{EGRESS_SETTING}: {entry!r} is neither a CIDR nor a host name")
        hosts.append(name)
    return tuple(networks), tuple(hosts)


def _egress_allow() -> str:
    """INCMAN_EGRESS_ALLOW, checked here so that a typo stops every command at start."""
    raw = os.environ.get(EGRESS_SETTING, "").strip()
    parse_allowance(raw)
    return raw


def load_settings() -> Settings:
    """Read the settings from the environment (call again after changing it)."""
    env = os.environ.get
    return Settings(
        data_dir=Path(env("INCMAN_DATA_DIR", "./incman-data")),
        database_url=env("INCMAN_DATABASE_URL", ""),
        broker_url=env("INCMAN_BROKER_URL", ""),
        redis_url=env("INCMAN_REDIS_URL", ""),
        config_path=env("INCMAN_CONFIG", ""),
        api_keys=env("INCMAN_API_KEYS", ""),
        api_host=env("INCMAN_API_HOST", "127.0.0.1"),
        api_port=_int("INCMAN_API_PORT", 8000),
        public_url=env("INCMAN_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        poll_cycletime=_int("INCMAN_POLL_CYCLETIME", 60),
        reconcile_after=_int("INCMAN_RECONCILE_AFTER", 60),
        poll_tick=_float("INCMAN_POLL_TICK", 5.0),
        aging_after=_int("INCMAN_AGING_AFTER", 14400),
        aging_severity=_int("INCMAN_AGING_SEVERITY", 4),
        retention_days=_int("INCMAN_RETENTION_DAYS", 90),
        log_format=_choice("INCMAN_LOG_FORMAT", "text", ("text", "json")),
        log_level=_choice(
            "INCMAN_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
        ).upper(),
        visibility_timeout=_int("INCMAN_VISIBILITY_TIMEOUT", 300),
        action_max_wait=_int("INCMAN_ACTION_MAX_WAIT", 86400),
        action_threads=_int("INCMAN_ACTION_THREADS", 4),
        actions_per_message=_int("INCMAN_ACTIONS_PER_MESSAGE", 100),
        secret_key=env("INCMAN_SECRET_KEY", ""),
        secrets_key=env("INCMAN_SECRETS_KEY", ""),
        api_rate_limit=env("INCMAN_API_RATE_LIMIT", ""),
        cli_url=env("INCMAN_URL", ""),
        cli_api_key=env("INCMAN_API_KEY", ""),
        tls_certfile=env("INCMAN_TLS_CERTFILE", ""),
        tls_keyfile=env("INCMAN_TLS_KEYFILE", ""),
        access_log=_bool("INCMAN_ACCESS_LOG", False),
        egress_allow=_egress_allow(),
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read once."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def reset_settings() -> None:
    """Forget the cached settings (tests and `incman run` change the environment)."""
    global _settings
    _settings = None
