"""Where state lives: the database and its models, the configuration catalog, Redis."""
