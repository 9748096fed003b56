"""Celery workers: the app, the per-process runtime, the jobs (thin shims over domain services)."""
