"""Distributed polling (issue 14): Celery workers over Redis poll one feed per task.

- `locks`: the Redis primitives (a lock with a token, renewed by its holder;
  a semaphore of expiring leases for per-host politeness across workers).
- `rulebook`: rule files versioned in the store's `meta` table, so every
  worker tags with the version the scheduler published.
- `tasks`: the Celery app and the per-feed task (a worker's side).
- `dispatch`: the scheduler's side: enqueue due feeds, wait for results.

Nothing here parses, tags or decides: a task calls the one Pipeline, and
idempotence comes from the store's unique constraints and the decider.
"""
