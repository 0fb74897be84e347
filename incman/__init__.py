"""incman: an incident-management integration service."""

__version__ = "0.1.0"
