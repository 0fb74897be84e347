"""Integrations: one module per remote system, behind one small contract."""
