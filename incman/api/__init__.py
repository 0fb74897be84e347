"""The HTTP API (FastAPI); the contract is API.md."""
