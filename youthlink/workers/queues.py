"""The Celery queues, one per area, so a long matching batch never delays crediting hours."""

QUEUES = ("default", "outbox", "matching", "hours", "stats", "notifications")
ALL_QUEUES = ",".join(QUEUES)
