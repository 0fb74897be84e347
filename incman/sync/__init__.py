"""Remote to local: the incident poller and its schedule."""
