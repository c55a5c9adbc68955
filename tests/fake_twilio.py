"""A local stand-in for Twilio's Messages API, on loopback, for the real `twilio` SDK to talk to.

It speaks HTTP as Twilio does: form-encoded `POST /2010-04-01/Accounts/{sid}/Messages.json` with
HTTP basic auth, JSON answers, Twilio's error body (`code`, `message`, `more_info`, `status`).
Tests script what it answers next (a message, a Twilio error, a 503) and read what it received.
Only the network address differs from the real thing: the app's `TWILIO_API_BASE_URL` points the
SDK's own HTTP client here.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MESSAGES_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"


@dataclass(frozen=True)
class Received:
    """One request as Twilio would have seen it."""

    method: str
    path: str
    username: str
    password: str
    form: dict[str, str]


@dataclass(frozen=True)
class Answer:
    """What the fake answers one request with: a message (status 201) or an error."""

    status: int = 201
    code: int | None = None
    message: str = ""


MESSAGE_CREATED = Answer()
SERVICE_UNAVAILABLE = Answer(503, 20503, "Service Unavailable")


def twilio_error(code: int, message: str = "Refused by the fake Twilio") -> Answer:
    """Twilio's answer for error `code` (https://www.twilio.com/docs/api/errors), status 400."""
    return Answer(400, code, message)


class FakeTwilio:
    """Twilio's Messages API for one account, on 127.0.0.1 and a free port."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.received: list[Received] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_next(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order; then with new messages again."""
        with self._lock:
            self._script.extend(answers)

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def _next_answer(self, request: Received) -> Answer:
        with self._lock:
            self.received.append(request)
            return self._script.popleft() if self._script else MESSAGE_CREATED

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                username, password = _basic_auth(self.headers.get("Authorization", ""))
                if (username, password) != (fake.account_sid, fake.auth_token):
                    return self._reply(401, _error_body(20003, "Authenticate", 401))
                if self.path != MESSAGES_PATH.format(sid=fake.account_sid):
                    return self._reply(404, _error_body(20404, "Not found", 404))
                answer = fake._next_answer(Received("POST", self.path, username, password, form))
                if answer.status != 201:
                    return self._reply(
                        answer.status, _error_body(answer.code, answer.message, answer.status)
                    )
                return self._reply(201, _message_body(fake.account_sid, form))

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass  # tests read `received`, not stderr

        return Handler


def _basic_auth(header: str) -> tuple[str, str]:
    if not header.startswith("Basic "):
        return "", ""
    username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return username, password


def _error_body(code: int | None, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _message_body(account_sid: str, form: dict[str, str]) -> dict:
    return {
        "sid": f"SM{uuid.uuid4().hex}",
        "account_sid": account_sid,
        "to": form.get("To"),
        "from": form.get("From"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "body": form.get("Body"),
        "status": "accepted" if form.get("MessagingServiceSid") else "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/SM.json",
    }
