"""The action outbox: rows, queue names, sending after commit, reconcile, dead letter."""
