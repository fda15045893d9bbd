"""A local OpenAI-compatible chat-completions server on 127.0.0.1, answering from `llm_script`, that
can fail the first requests with 429 and 500 the way real endpoints do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.llm_script import respond


class Recorder:
    def __init__(self, failures: list[int]) -> None:
        self.failures = list(failures)
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()


@contextmanager
def openai_server(failures: list[int] | None = None) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(failures or [])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with recorder.lock:
                recorder.requests.append(body)
                recorder.headers.append(dict(self.headers))
                status = recorder.failures.pop(0) if recorder.failures else 200
                recorder.statuses.append(status)
                n = len(recorder.requests)
            if status != 200:
                self._send(status, {"error": {"message": "injected failure", "type": "server_error"}})
                return
            tools = [t["function"]["name"] for t in body.get("tools", [])]
            message = respond(body["messages"], tools, n)
            self._send(200, {"id": f"cmpl-{n}", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                             "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})  # fmt: skip

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", recorder
    finally:
        server.shutdown()
        server.server_close()
