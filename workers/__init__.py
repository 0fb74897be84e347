"""The Celery side of incman: the app, its configuration and thin tasks."""
