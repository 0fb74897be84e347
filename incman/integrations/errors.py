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


class NotSupported(PermanentError):
    """The integration lacks the capability (declared, never faked)."""


class CannotReopen(PermanentError):
    """This incident can no longer be re-opened at the remote (e.g. closed for good, read-only):
    the caller opens a new incident instead, as for integrations that cannot re-open at all."""
