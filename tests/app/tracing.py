"""An OpenTelemetry SDK for test processes: every finished span becomes one JSON line in a file per process.

Bridge and worker processes turn it on from ``KBTEST_TRACE_DIR`` (tests.app's ``ready``); the test
process calls :func:`export_to` itself. Spans are exported as they end (no thread, so a forked pool
process writes its own file), and the test reads every file with :func:`read_spans`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

TRACE_DIR_VARIABLE = "KBTEST_TRACE_DIR"


class JsonLinesExporter(SpanExporter):
    """Appends each span to ``<directory>/spans-<pid>.jsonl`` (the pid of the process that ended it)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"spans-{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            for span in spans:
                out.write(json.dumps(as_dict(span)) + "\n")
        return SpanExportResult.SUCCESS


def as_dict(span: ReadableSpan) -> dict:
    context, parent = span.get_span_context(), span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": None if parent is None else f"{parent.span_id:016x}",
        "attributes": dict(span.attributes or {}),
        "events": [event.name for event in span.events],
        "status": span.status.status_code.name,
        "pid": os.getpid(),
    }


_exporter: JsonLinesExporter | None = None


def export_to(directory: Path) -> None:
    """Export this process's spans to ``directory`` (the provider is set once; later calls move the files)."""
    global _exporter
    if _exporter is None:
        _exporter = JsonLinesExporter(directory)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.directory = directory


def export_from_environment() -> None:
    if os.environ.get(TRACE_DIR_VARIABLE):
        export_to(Path(os.environ[TRACE_DIR_VARIABLE]))


def read_spans(directory: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(directory.glob("spans-*.jsonl")) for line in path.read_text().splitlines() if line]
