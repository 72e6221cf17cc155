"""A local HTTP server on loopback that behaves like Discord's webhook endpoint (real HTTP, a thread).

``POST /api/webhooks/{id}/{token}[?wait=true]`` creates a message (with ``wait=true`` it answers the
message with its ``id``, else 204); ``PATCH …/messages/{message_id}`` edits it. Payloads are checked
against Discord's limits (400 with the problems when over); requests faster than ``rate`` per second
get 429 with ``retry_after``; a wrong id or token gets 401 (Discord: "Invalid Webhook Token");
``delay`` makes every answer that slow.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_ID, TOKEN = "1180000000000000001", "tok-" + "x" * 60
"""The fake webhook's id and token: what must never show in a log line."""
LIMITS = {"content": 2000, "embeds": 10, "title": 256, "description": 4096, "fields": 25, "name": 256, "value": 1024,
          "footer": 2048, "author": 256, "total": 6000}


def problems_of(payload: dict[str, Any]) -> list[str]:
    """What Discord would refuse in ``payload`` (and what this project promises: no mentions)."""
    found = []
    if len(payload.get("content") or "") > LIMITS["content"]:
        found.append("content over 2000")
    embeds = payload.get("embeds") or []
    if len(embeds) > LIMITS["embeds"]:
        found.append("more than 10 embeds")
    total = 0
    for embed in embeds:
        for key in ("title", "description"):
            if len(embed.get(key) or "") > LIMITS[key]:
                found.append(f"{key} over {LIMITS[key]}")
            total += len(embed.get(key) or "")
        fields = embed.get("fields") or []
        if len(fields) > LIMITS["fields"]:
            found.append("more than 25 fields")
        for f in fields:
            if len(f["name"]) > LIMITS["name"] or len(f["value"]) > LIMITS["value"] or not f["name"] or not f["value"]:
                found.append("a field over its limits or empty")
            total += len(f["name"]) + len(f["value"])
        footer = (embed.get("footer") or {}).get("text") or ""
        total += len(footer)
        if len(footer) > LIMITS["footer"]:
            found.append("footer over 2048")
    if total > LIMITS["total"]:
        found.append(f"embeds total {total} over 6000")
    if not payload.get("content") and not embeds:
        found.append("empty message")
    if payload.get("allowed_mentions") != {"parse": []}:
        found.append(f"allowed_mentions is {payload.get('allowed_mentions')!r}, not {{'parse': []}}")
    return found


@dataclass
class Request:
    at: float
    method: str
    message_id: str | None
    status: int
    payload: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)


class FakeDiscord:
    def __init__(self, *, rate: float | None = None, delay: float = 0.0, retry_after: float = 0.5, discord: bool = True) -> None:
        self.discord = discord  # False: a generic JSON webhook, any JSON body accepted
        self.webhook_id, self.token = WEBHOOK_ID, TOKEN
        self.rate, self.delay, self.retry_after = rate, delay, retry_after
        self.requests: list[Request] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1300000000000000000)
        self._lock = threading.Lock()
        self._last_accepted = 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/api/webhooks/{self.webhook_id}/{self.token}"

    def __enter__(self) -> FakeDiscord:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.status == 200 and (method is None or r.method == method)]

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, dict[str, Any] | None]:
        if self.delay:
            time.sleep(self.delay)  # the server is slow on purpose
        prefix = f"/api/webhooks/{self.webhook_id}/{self.token}"
        message_id = path[len(prefix) + len("/messages/"):] if path.startswith(prefix + "/messages/") else None
        if not path.startswith(prefix) or (method == "PATCH" and message_id is None) or (method == "POST" and path != prefix):
            self._record(method, None, 401, None, [])
            return 401, {"message": "Invalid Webhook Token", "code": 50027}
        payload = json.loads(body or b"{}")
        with self._lock:
            now = time.monotonic()
            if self.rate and now - self._last_accepted < 1 / self.rate:
                self.requests.append(Request(time.time(), method, message_id, 429, payload))
                return 429, {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": False}
            self._last_accepted = now
        problems = problems_of(payload) if self.discord else []
        if problems:
            self._record(method, message_id, 400, payload, problems)
            return 400, {"message": "Invalid Form Body", "errors": problems}
        if method == "PATCH":
            if message_id not in self.messages:
                self._record(method, message_id, 404, payload, [])
                return 404, {"message": "Unknown Message", "code": 10008}
        else:
            message_id = str(next(self._ids))
        self.messages[message_id] = payload
        self._record(method, message_id, 200, payload, [])
        if method == "POST" and query.get("wait", ["false"])[0].lower() != "true":
            return 204, None
        return 200, {"id": message_id, "webhook_id": self.webhook_id, **payload}

    def _record(self, method: str, message_id: str | None, status: int, payload: Any, problems: list[str]) -> None:
        with self._lock:
            self.requests.append(Request(time.time(), method, message_id, status, payload, problems))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = fake.answer(self.command, parts.path, parse_qs(parts.query), body)
                data = b"" if answer is None else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout, or its process ended): as Discord, answer no one

            do_POST = do_PATCH = _serve

            def log_message(self, *_: Any) -> None:
                pass

        return Handler
