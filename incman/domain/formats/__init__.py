"""Inbound event formats: each parses its own JSON into incman events."""
