"""Accepting events from every source, and what operators do to them."""
