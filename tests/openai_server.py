"""A local OpenAI-compatible chat-completions server on 127.0.0.1, answering from a script
(`llm_script` unless told otherwise), that fails requests the way real endpoints do.

A fault is an HTTP status (429 comes with Retry-After: 0; 400 is a context-length overflow) or one
of: "timeout" (hold the request past the client's timeout), "drop" (close the connection without an
answer), "bad_json" (a tool call whose arguments are not JSON), "truncated" (cut off at the output
limit, finish_reason "length"). `faults` are used by the first requests in turn; `every` (if set)
fails every later request too, for an endpoint that is down.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.llm_script import respond

Fault = int | str
Script = Callable[[list[dict[str, Any]], list[str], int], dict[str, Any]]
HOLD_S = 30.0
CONTEXT_ERROR = {
    "message": "This model's maximum context length is 128000 tokens. However, your messages "
    "resulted in 131072 tokens.",
    "type": "invalid_request_error",
    "code": "context_length_exceeded",
}


class Recorder:
    def __init__(self, faults: list[Fault]) -> None:
        self.faults = list(faults)
        self.every: Fault | None = None
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[Fault] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()

    def next_fault(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[Fault, int]:
        with self.lock:
            self.requests.append(body)
            self.headers.append(headers)
            fault: Fault = self.faults.pop(0) if self.faults else (self.every or 200)
            self.statuses.append(fault)
            return fault, len(self.requests)


@contextmanager
def openai_server(failures: list[Fault] | None = None, script: Script = respond) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(failures or [])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fault, n = recorder.next_fault(body, dict(self.headers))
            if fault == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if fault == "timeout":
                recorder.released.wait(HOLD_S)  # the client gave up long before; then answer nobody
                self.close_connection = True
                return
            if isinstance(fault, int) and fault != 200:
                error = CONTEXT_ERROR if fault == 400 else {"message": "injected failure", "type": "server_error"}
                self._send(fault, {"error": error}, {"Retry-After": "0"} if fault == 429 else {})
                return
            tools = [t["function"]["name"] for t in body.get("tools", [])]
            message, finish = script(body["messages"], tools, n), "tool_calls"
            if fault in {"bad_json", "truncated"} and message.get("tool_calls"):
                arguments = message["tool_calls"][0]["function"]["arguments"]
                message["tool_calls"][0]["function"]["arguments"] = arguments[: max(1, len(arguments) // 2)]
                finish = "length" if fault == "truncated" else finish
            self._send(
                200,
                {
                    "id": f"cmpl-{n}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                },
            )

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", recorder
    finally:
        recorder.released.set()
        server.shutdown()
        server.server_close()
