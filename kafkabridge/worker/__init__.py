"""The worker side of a message's path: the Celery task that runs a handler, its retries and its checks."""
