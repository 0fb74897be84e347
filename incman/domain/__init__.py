"""Pure domain logic: no database, no broker, no network."""
