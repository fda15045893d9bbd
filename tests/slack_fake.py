"""A fake Slack Web API on 127.0.0.1 for the real slack_sdk client, and a signer for interactive
payloads sent to the real Bolt app over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeSlack:
    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.base_url = ""
        self._ts = 1000
        self._lock = threading.Lock()

    def next_call(self, method: str, timeout: float = 120.0) -> dict[str, Any]:
        """Block until the app calls `method` (other calls are kept in the log), or fail."""
        deadline = time.monotonic() + timeout
        while True:
            name, args = self.calls.get(timeout=max(0.01, deadline - time.monotonic()))
            if name == method:
                return args

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.log.append((method, args))
            self._ts += 1
            ts = f"{self._ts}.000100"
        self.calls.put((method, args))
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "team_id": "T1", "bot_id": "B1", "url": "https://fake.slack/"}
        if method == "chat.postMessage":
            return {"ok": True, "channel": args.get("channel", "C1"), "ts": ts, "message": {"ts": ts}}
        return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts", ts)}


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                args = json.loads(raw or "{}")
            else:
                args = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            for key in ("blocks", "view"):
                if isinstance(args.get(key), str):
                    args[key] = json.loads(args[key])
            method = self.path.rsplit("/", 1)[-1]
            data = json.dumps(fake.answer(method, args)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                found: dict[str, Any] = element
                return found
    raise AssertionError(f"no button {action_id} in the message")


def click(fake: FakeSlack, message: dict[str, Any], action_id: str, user: str = "UAPPROVER") -> dict[str, Any]:
    element = button(message["blocks"], action_id)
    return {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": f"trigger-{action_id}",
        "response_url": fake.base_url + "respond",
        "channel": {"id": "C1"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1"},
        "message": {"ts": "1"},
        "actions": [
            {"type": "button", "action_id": action_id, "block_id": "b", "value": element["value"], "action_ts": "1"}
        ],
    }


def submission(modal: dict[str, Any], values: dict[str, str], user: str = "UAPPROVER") -> dict[str, Any]:
    state = {name: {"value": {"type": "plain_text_input", "value": value}} for name, value in values.items()}
    return {
        "type": "view_submission",
        "user": {"id": user},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "t",
        "view": {
            "id": "V1",
            "callback_id": "approval_edit",
            "type": "modal",
            "private_metadata": modal["private_metadata"],
            "state": {"values": state},
        },
    }


def send(
    url: str, secret: str, payload: dict[str, Any], *, timestamp: int | None = None, signature: str | None = None
) -> int:
    body = "payload=" + urllib.parse.quote(json.dumps(payload))
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp}
    if signature != "none":
        headers["X-Slack-Signature"] = signature or signed
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
