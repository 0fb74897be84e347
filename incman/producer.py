"""Send events from Python code: `from incman.producer import send_event, send_events`."""

from incman.domain.event import EventError
from incman.ingest.producer import send_event, send_events

__all__ = ["EventError", "send_event", "send_events"]
