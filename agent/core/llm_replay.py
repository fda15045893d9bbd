"""Record and replay the analyst's chat-model exchanges at the HTTP layer, for deterministic evals.

Each exchange is one JSON file named by a hash of the request (path and body). Headers are never
written, so keys and authorization tokens cannot end up in a recording; bodies pass through the
runtime's redaction too. Replay serves recorded answers with no network and answers an unseen request
with an error that names it, which the client does not retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from analyze_experiment.agent.core.errors import UserError


def request_key(request: httpx.Request) -> str:
    body = json.loads(request.content or b"{}")
    canonical = json.dumps({"path": request.url.path, "body": body}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class RecordingTransport(httpx.BaseTransport):
    def __init__(self, directory: Path, redact: Callable[[str], str], inner: httpx.BaseTransport | None = None) -> None:
        self.directory = directory
        self._redact = redact
        self._inner = inner or httpx.HTTPTransport()
        directory.mkdir(parents=True, exist_ok=True)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        body = response.read()
        if response.status_code == httpx.codes.OK:
            record = {"request": json.loads(request.content or b"{}"), "response": json.loads(body)}
            text = self._redact(json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True))
            (self.directory / f"{request_key(request)}.json").write_text(text, encoding="utf-8")
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


class ReplayTransport(httpx.BaseTransport):
    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise UserError(f"no recording at {directory}; make one with `evals run --record {directory}`")
        self.directory = directory
        self.misses: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = request_key(request)
        path = self.directory / f"{key}.json"
        if not path.exists():
            unseen = self.directory / f"{key}.unseen.json"
            unseen.write_text(
                json.dumps(json.loads(request.content or b"{}"), indent=1, sort_keys=True), encoding="utf-8"
            )
            message = (
                f"replay: request {key} was not recorded in {self.directory} (it is saved as {unseen.name}); "
                "the analyst asked something new, so record again with --record"
            )
            self.misses.append(message)
            return httpx.Response(404, json={"error": {"message": message, "type": "replay_miss"}}, request=request)
        answer: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["response"]
        return httpx.Response(200, json=answer, request=request)


def http_client(record: Path | None, replay: Path | None, redact: Callable[[str], str]) -> httpx.Client | None:
    if record and replay:
        raise UserError("pass --record or --replay, not both")
    if replay:
        return httpx.Client(transport=ReplayTransport(replay))
    if record:
        return httpx.Client(transport=RecordingTransport(record, redact))
    return None
