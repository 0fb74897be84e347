"""The error tree every integration raises: transient (retry) vs permanent (dead letter)."""

from __future__ import annotations


class IntegrationError(Exception):
    """Root of every error an integration raises."""


class TransientError(IntegrationError):
    """Worth retrying: timeouts, connection errors, 5xx, 429 (maybe with Retry-After)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(IntegrationError):
    """Retrying cannot help: 4xx answers, refused input."""


class ConfigurationError(PermanentError):
    """The notification's integration config is incomplete or wrong."""


class NotSupported(PermanentError):
    """The integration lacks the capability (declared, never faked)."""
