"""JSON Schemas of topics: declared once in ``KAFKABRIDGE["SCHEMAS"]``, compiled once per process.

::

    KAFKABRIDGE = {"SCHEMAS": {"orders": BASE_DIR / "schemas/order.json", "refunds": {"type": "object", ...}}}

A schema is a dict or the path of a JSON file (relative paths are read from the working directory;
prefer absolute ones). The validator is ``jsonschema``'s class for the schema's ``$schema``, Draft
2020-12 when it names none; the schema is checked (``check_schema``) when the settings are built, so a
malformed schema or a missing file stops the process at start-up. ``format`` is not asserted (the
JSON Schema default).

Both sides check the same bytes: the handler task before the handler runs (a mismatch is
:class:`~kafkabridge.errors.SchemaError`, dead-lettered at once with ``schema: <path>: <problem>``),
and :meth:`kafkabridge.Producer.send` before it sends (it raises the same error; nothing is sent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigurationError, PoisonMessage, SchemaError
from .message import Message


SchemaSource = Mapping[str, Any] | str | os.PathLike[str]


class Schema:
    """One compiled JSON Schema."""

    def __init__(self, document: Mapping[str, Any], *, source: str = "an inline schema") -> None:
        try:
            from jsonschema import Draft202012Validator, validators
            from jsonschema.exceptions import SchemaError as MalformedSchema
        except ImportError as error:  # pragma: no cover - depends on the installation
            raise ConfigurationError("SCHEMAS needs the jsonschema package: pip install 'kafkabridge[schema]'") from error
        if not isinstance(document, Mapping):
            raise ConfigurationError(f"{source} is not a JSON Schema: a schema is a JSON object, got {type(document).__name__}")
        validator_class = validators.validator_for(document, default=Draft202012Validator)
        try:
            validator_class.check_schema(document)
        except MalformedSchema as error:
            raise ConfigurationError(f"{source} is not a valid JSON Schema: {error.json_path}: {error.message}") from error
        self.source = source
        self._validator = validator_class(document)

    @classmethod
    def load(cls, declared: SchemaSource) -> Schema:
        """The schema ``declared`` (a dict, or a JSON file's path), compiled once per process."""
        key: object = os.fspath(declared) if isinstance(declared, (str, os.PathLike)) else id(declared)
        cached = _compiled.get(key)
        if cached is not None and (cached[0] is declared or not isinstance(key, int)):
            return cached[1]
        if isinstance(key, str):
            path = Path(key)
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ConfigurationError(f"cannot read the JSON Schema {str(path)!r} (from {os.getcwd()}): {error}") from error
            schema = cls(document, source=f"the schema in {key!r}")
        else:
            schema = cls(declared, source="an inline schema")  # type: ignore[arg-type]
        _compiled[key] = (declared, schema)
        return schema

    def check(self, document: Any) -> None:
        """Raise :class:`~kafkabridge.errors.SchemaError` naming the most relevant mismatch, if any."""
        from jsonschema.exceptions import best_match

        error = best_match(self._validator.iter_errors(document))
        if error is not None:
            raise SchemaError(error.json_path, error.message)

    def check_value(self, value: bytes | None) -> None:
        """Check a record's value as JSON; a value that is not JSON does not match either."""
        try:
            document = Message("", 0, 0, value=value).json()
        except PoisonMessage as error:  # null, not UTF-8, not JSON
            raise SchemaError("$", error.reason) from error
        self.check(document)


_compiled: dict[object, tuple[object, Schema]] = {}
"""Compiled schemas by file path or by the id of the declared dict (kept alive here, so ids stay unique)."""


def schema_for(schemas: Mapping[str, Any], topic: str) -> Schema | None:
    """``topic``'s schema per ``schemas`` (``BridgeSettings.schemas``); None when it has none."""
    declared = schemas.get(topic)
    return None if declared is None else Schema.load(declared)


def check_message(schemas: Mapping[str, Any], message: Message) -> None:
    """Before a handler runs: raise SchemaError when ``message`` does not match its topic's schema.

    A value that is not JSON at all raises :class:`~kafkabridge.errors.PoisonMessage` (as
    ``message.json()`` does): dead-lettered at once too, with its own reason."""
    schema = schema_for(schemas, message.topic)
    if schema is not None:
        schema.check(message.json())
