"""The kafkabridge service: a Django project whose Celery app runs the handlers and whose admin shows failures."""

from .celery import app as celery_app

__all__ = ["celery_app"]
