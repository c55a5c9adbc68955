"""A local stand-in for Twilio's Messages and Calls APIs, on loopback, for the real `twilio` SDK.

It speaks HTTP as Twilio does: form-encoded `POST /2010-04-01/Accounts/{sid}/Messages.json` (a
text) and `.../Calls.json` (a call) with HTTP basic auth, JSON answers in the shape of the
Message and Call resources, Twilio's error body (`code`, `message`, `more_info`, `status`).
Tests script what it answers next (created, a Twilio error, a 503) and read what it received.
Only the network address differs from the real thing: the app's `TWILIO_API_BASE_URL` points the
SDK's own HTTP client here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.etree import ElementTree

MESSAGES_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
CALLS_PATH = "/2010-04-01/Accounts/{sid}/Calls.json"


@dataclass(frozen=True)
class Received:
    """One request as Twilio would have seen it."""

    method: str
    path: str
    username: str
    password: str
    form: dict[str, str]  # the first value of each field
    lists: dict[str, list[str]] = field(default_factory=dict)  # every value of each field
    sid: str = ""  # of the message or call created, if one was


@dataclass(frozen=True)
class Answer:
    """What the fake answers one request with: the resource created (status 201) or an error."""

    status: int = 201
    code: int | None = None
    message: str = ""


MESSAGE_CREATED = Answer()
SERVICE_UNAVAILABLE = Answer(503, 20503, "Service Unavailable")


def twilio_error(code: int, message: str = "Refused by the fake Twilio") -> Answer:
    """Twilio's answer for error `code` (https://www.twilio.com/docs/api/errors), status 400."""
    return Answer(400, code, message)


class FakeTwilio:
    """Twilio's Messages and Calls APIs for one account, on 127.0.0.1 and a free port."""

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
        """Answer the next requests, texts or calls, with these, in order; then create again."""
        with self._lock:
            self._script.extend(answers)

    def messages(self) -> list[Received]:
        """The texts asked for, in order."""
        return self._received_at(MESSAGES_PATH)

    def calls(self) -> list[Received]:
        """The calls asked for, in order."""
        return self._received_at(CALLS_PATH)

    def _received_at(self, path: str) -> list[Received]:
        wanted = path.format(sid=self.account_sid)
        with self._lock:
            return [request for request in self.received if request.path == wanted]

    def _next_answer(self, request: Received) -> Answer:
        with self._lock:
            self.received.append(request)
            return self._script.popleft() if self._script else MESSAGE_CREATED

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                lists = parse_qs(self.rfile.read(length).decode())
                form = {k: v[0] for k, v in lists.items()}
                username, password = _basic_auth(self.headers.get("Authorization", ""))
                if (username, password) != (fake.account_sid, fake.auth_token):
                    return self._reply(401, _error_body(20003, "Authenticate", 401))
                resources = {
                    MESSAGES_PATH.format(sid=fake.account_sid): _message_body,
                    CALLS_PATH.format(sid=fake.account_sid): _call_body,
                }
                if self.path not in resources:
                    return self._reply(404, _error_body(20404, "Not found", 404))
                refusal = _call_refusal(form) if resources[self.path] is _call_body else None
                if refusal is not None:
                    return self._reply(400, _error_body(*refusal, 400))
                created = resources[self.path](fake.account_sid, form)
                request = Received(
                    "POST", self.path, username, password, form, lists, created["sid"]
                )
                answer = fake._next_answer(request)
                if answer.status != 201:
                    return self._reply(
                        answer.status, _error_body(answer.code, answer.message, answer.status)
                    )
                return self._reply(201, created)

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


def _call_refusal(form: dict[str, str]) -> tuple[int, str] | None:
    """What Twilio says to a call it cannot place as asked: no caller, or nothing to do."""
    if not form.get("From"):
        return 21603, "A 'From' phone number is required."
    if not any(form.get(name) for name in ("Url", "Twiml", "ApplicationSid")):
        return 21205, "Url parameter is required."
    return None


def _call_body(account_sid: str, form: dict[str, str]) -> dict:
    sid = f"CA{uuid.uuid4().hex}"
    return {
        "sid": sid,
        "account_sid": account_sid,
        "to": form.get("To"),
        "to_formatted": form.get("To"),
        "from": form.get("From"),
        "from_formatted": form.get("From"),
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "answered_by": None,
        "duration": None,
        "price": None,
        "start_time": None,
        "end_time": None,
        "parent_call_sid": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json",
    }


def spoken_codes(twiml: str) -> list[str]:
    """The code each `<Say>` of a call's TwiML reads out, digit by digit ("1, 2, 3" is "123")."""
    says = ElementTree.fromstring(twiml).iter("Say")  # noqa: S314 - the app's own TwiML
    return [
        match.group(0).replace(", ", "")
        for say in says
        if (match := re.search(r"\d(?:, \d)+", say.text or ""))
    ]
