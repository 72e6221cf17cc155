"""The per-process wiring of kafkabridge: settings, hooks and the dead-letter store, set once by ``configure``.

Handler tasks run inside Celery workers, where nothing can be passed to them but their message;
they find their surroundings here. The Django app calls :func:`configure` from ``AppConfig.ready``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from celery.signals import worker_init
from kombu.utils.imports import symbol_by_name

from .dead_letter import DeadLetterStore
from .errors import ConfigurationError
from .hooks import HookDispatcher, Hooks
from .settings import BridgeSettings


@dataclass(frozen=True)
class Runtime:
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
    worker_init.connect(_check_worker_handlers, weak=False, dispatch_uid="kafkabridge.checks")
    return _current


def current() -> Runtime:
    """The wiring set by :func:`configure`; a clear error when nobody configured this process."""
    if _current is None:
        raise ConfigurationError(
            "kafkabridge is not configured in this process: call kafkabridge.configure(...) at start-up "
            "(with Django, add 'dashboard.failures' to INSTALLED_APPS and it is done for you)"
        )
    return _current


def dead_letter_store() -> DeadLetterStore:
    store = current().dead_letters
    if store is None:
        raise ConfigurationError(
            "no dead-letter store is configured: set KAFKABRIDGE['DEAD_LETTER_STORE'] to the import path of a "
            "kafkabridge.dead_letter.DeadLetterStore class (Django: 'dashboard.failures.store.DjangoDeadLetterStore')"
        )
    return store


def _check_worker_handlers(sender: object = None, **_: object) -> None:
    """A worker refuses to start with a handler whose retries would outlive the broker's visibility timeout.

    Celery logs and ignores exceptions raised by signal receivers, so refusing means exiting.
    """
    from .checks import check_visibility_timeout
    from .registry import handlers

    app = sender.app  # type: ignore[attr-defined]
    app.loader.import_default_modules()
    try:
        check_visibility_timeout(app, handlers.routes_for().values() if handlers.topics() else ())
    except ConfigurationError as error:
        logger.critical("kafkabridge refuses to start this worker: %s", error)
        raise SystemExit(f"kafkabridge refuses to start this worker: {error}") from error
