"""The per-process wiring of kafkabridge: settings, hooks and the dead-letter store, set once by ``configure``.

Handler tasks run inside Celery workers, where nothing can be passed to them but their message;
they find their surroundings here. The Django app calls :func:`configure` from ``AppConfig.ready``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

import redis
from celery import Celery
from celery.signals import worker_init
from kombu.utils.imports import symbol_by_name

from .completion import CompletionLedger, ledger_for
from .dead_letter.store import DeadLetterStore
from .errors import ConfigurationError
from .hooks import HookDispatcher, Hooks
from .ratelimit.overrides import Overrides
from .settings import BridgeSettings


@dataclass(frozen=True)
class Runtime:
    """What a bridge or worker process needs besides its messages: settings, hooks, the dead-letter store."""

    settings: BridgeSettings
    hooks: HookDispatcher
    dead_letters: DeadLetterStore | None


logger = logging.getLogger(__name__)

_current: Runtime | None = None


def configure(
    settings: BridgeSettings | None = None,
    *,
    hooks: Iterable[Hooks] | None = None,
    dead_letter_store: DeadLetterStore | None = None,
) -> Runtime:
    """Wire this process. Hooks and the store default to the import paths named in ``settings``."""
    global _current
    settings = settings or BridgeSettings()
    if hooks is None:
        hooks = [symbol_by_name(path)() for path in settings.hooks]
    if dead_letter_store is None and settings.dead_letter_store:
        dead_letter_store = symbol_by_name(settings.dead_letter_store)()
    _current = Runtime(settings=settings, hooks=HookDispatcher(hooks), dead_letters=dead_letter_store)
    install_worker_checks()
    return _current


def install_worker_checks() -> None:
    """Make Celery workers of this process refuse to start when kafkabridge could not keep its promises."""
    worker_init.connect(_check_worker, weak=False, dispatch_uid="kafkabridge.checks")


def current() -> Runtime:
    """The wiring set by :func:`configure`; a clear error when nobody configured this process."""
    if _current is None:
        raise ConfigurationError(
            "kafkabridge is not configured in this process: call kafkabridge.configure(...) at start-up "
            "(with Django, add 'kafkabridge.contrib.django' to INSTALLED_APPS and it is done for you)"
        )
    return _current


def celery_app() -> Celery:
    """The Celery app named by ``settings.celery_app``; a clear error when none is named."""
    path = current().settings.celery_app
    if not path:
        raise ConfigurationError(
            "kafkabridge does not know your Celery app: set KAFKABRIDGE['CELERY_APP'] to its import path, "
            "e.g. 'proj.celery:app'"
        )
    return symbol_by_name(path)  # type: ignore[no-any-return]


def completion_ledger(app: Celery, group: str) -> CompletionLedger:
    """The completion ledger of consumer group ``group``: on ``COMPLETION_REDIS_URL``, else the Celery broker."""
    return ledger_for(group, url=current().settings.completion_redis_url, broker_url=str(app.conf.broker_url or ""))


def rate_limit_overrides() -> Overrides:
    """Where operators' run-time rate limits go: ``RATE_LIMIT_REDIS_URL``, else the Celery broker."""
    url = current().settings.rate_limit_redis_url or str(celery_app().conf.broker_url or "")
    return Overrides(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5))


def dead_letter_store() -> DeadLetterStore:
    """The configured store; a clear error when there is none (the handler task then keeps retrying the save)."""
    store = current().dead_letters
    if store is None:
        raise ConfigurationError(
            "no dead-letter store is configured: set KAFKABRIDGE['DEAD_LETTER_STORE'] to the import path of a "
            "kafkabridge.dead_letter.DeadLetterStore class (Django: 'kafkabridge.contrib.django.store.DjangoDeadLetterStore')"
        )
    return store


def _check_worker(sender: object = None, **_: object) -> None:
    """Refuse to start a worker that is not configured, has no dead-letter store, or has a handler whose
    retries would outlive the broker's visibility timeout (Celery logs and ignores exceptions raised by
    signal receivers, so refusing means exiting); warn of throttled handlers that share a queue."""
    from .checks import check_visibility_timeout, throttled_queue_neighbours
    from .registry import handlers

    app = sender.app  # type: ignore[attr-defined]
    app.loader.import_default_modules()
    if not handlers.topics():
        return
    try:
        dead_letter_store()
        check_visibility_timeout(app, handlers.routes_for().values())
    except ConfigurationError as error:
        logger.critical("kafkabridge refuses to start this worker: %s", error)
        raise SystemExit(f"kafkabridge refuses to start this worker: {error}") from error
    for warning in throttled_queue_neighbours(app, handlers.routes_for().values(), current().settings.queue):
        logger.warning("kafkabridge: %s", warning)
