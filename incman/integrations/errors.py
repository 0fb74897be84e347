"""The error tree every integration raises: transient (retry) vs permanent (dead letter)."""

from __future__ import annotations

from typing import Any


class IntegrationError(Exception):
    """Root of every error an integration raises. `status` is the remote's HTTP status (None
    when no answer came: a timeout, a dropped connection, or a refusal made locally) and
    `retry_after` the seconds it asked to wait."""

    def __init__(
        self, message: str = "", retry_after: float | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep status and retry_after when the error crosses a process boundary (pickle).
        return (_rebuild, (type(self), str(self), self.retry_after, self.status))


def _rebuild(
    cls: type[IntegrationError], message: str, retry_after: float | None, status: int | None
) -> IntegrationError:
    return cls(message, retry_after, status=status)


class TransientError(IntegrationError):
    """Worth retrying: timeouts, connection errors, 5xx, 429 (maybe with Retry-After)."""


class Deferred(TransientError):
    """The call was not made: the remote is rate-limited, paused or its breaker is open. Not a
    failure: the action is sent again after `retry_after` without using up a retry."""


class PermanentError(IntegrationError):
    """Retrying cannot help: 4xx answers, refused input."""


class ConfigurationError(PermanentError):
    """The notification's integration config is incomplete or wrong."""


class EgressRefused(ConfigurationError):
    """The notification's URL leads to an address the egress policy refuses
    (incman.integrations.egress)."""


class NotSupported(PermanentError):
    """The integration lacks the capability (declared, never faked)."""


class CannotReopen(PermanentError):
    """This incident can no longer be re-opened at the remote (e.g. closed for good, read-only):
    the caller opens a new incident instead, as for integrations that cannot re-open at all."""


def public_reason(exc: BaseException) -> str:
    """The failure in words that contain nothing the remote said and no address: what a
    failure event and anyone below manager are shown (the full text stays in the action's
    dead-letter record, for managers)."""
    if isinstance(exc, EgressRefused):
        return "refused by the egress policy (INCMAN_EGRESS_ALLOW)"
    if isinstance(exc, ConfigurationError):
        return "the notification's configuration is not usable"
    if isinstance(exc, NotSupported):
        return "the integration cannot do this"
    if isinstance(exc, IntegrationError) and exc.status is not None:
        kind = "a temporary failure" if isinstance(exc, TransientError) else "a refusal"
        return f"the remote system answered HTTP {exc.status} ({kind})"
    if isinstance(exc, TransientError):
        return "no answer from the remote system (timeout, connection or rate limit)"
    if isinstance(exc, PermanentError):
        return "the remote system's answer could not be used"
    return "internal error"
