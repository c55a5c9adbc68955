"""A TLS-terminating gRPC proxy in front of the Temporal dev server, as Temporal Cloud would be.

The proxy is Debian's nginx (`apt-get install nginx-light`), run as a child process with a config
of its own in a temporary directory; the certificates come from a test CA made at test time with
`cryptography`. It can demand an API key (`authorization: Bearer <key>`, answering gRPC
PERMISSION_DENIED otherwise) and a client certificate signed by the CA (mTLS; gRPC
UNAUTHENTICATED without one). No Django imports.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.temporal_server import free_port

NGINX = Path(os.environ.get("NGINX_PATH", "/usr/sbin/nginx"))
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProxyCertificates:
    """PEM files: a CA, a server certificate for localhost and 127.0.0.1, a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def certificates_make(directory: Path) -> ProxyCertificates:
    """Make a fresh test CA and the certificates it signs, valid for an hour, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("coffeeshop test CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name: str, usage, names: list[x509.GeneralName] | None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(_name(common_name), ca_name, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = leaf(
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_cert, client_key = leaf("coffeeshop worker", ExtendedKeyUsageOID.CLIENT_AUTH, None)

    certificates = ProxyCertificates(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    _write_cert(certificates.ca, ca_cert)
    _write_cert(certificates.server_cert, server_cert)
    _write_key(certificates.server_key, server_key)
    _write_cert(certificates.client_cert, client_cert)
    _write_key(certificates.client_key, client_key)
    return certificates


def nginx_missing_reason() -> str | None:
    """Why the proxy cannot run here, or None when it can."""
    if not os.access(NGINX, os.X_OK):
        return f"No nginx at {NGINX}: install it with `apt-get install nginx-light`."
    return None


class TlsProxy:
    """nginx on a free port of 127.0.0.1, terminating TLS and passing gRPC to `upstream`."""

    def __init__(
        self,
        directory: Path,
        *,
        upstream: str,
        certificates: ProxyCertificates,
        api_key: str | None = None,
        require_client_certificate: bool = False,
    ) -> None:
        self.directory = directory
        self.upstream = upstream
        self.certificates = certificates
        self.api_key = api_key
        self.require_client_certificate = require_client_certificate
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.config_path = directory / "nginx.conf"
        self.error_log = directory / "error.log"
        self.access_log = directory / "access.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start nginx and return once it accepts connections."""
        (self.directory / "temp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        command = [str(NGINX), "-p", str(self.directory), "-c", str(self.config_path)]
        checked = subprocess.run(
            [*command, "-t", "-q"], capture_output=True, text=True, check=False, timeout=10
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused its config:\n{checked.stderr}")
        self._process = subprocess.Popen(
            [*command, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._port_open():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def restart(self, *, api_key: str | None) -> None:
        """Start again on the same port, demanding `api_key` now (a key revoked, say)."""
        self.stop()
        self.api_key = api_key
        self.start()

    def stop(self) -> None:
        """Stop nginx (a fast shutdown), killing it if it lingers."""
        if self._process is None:
            return
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None

    def calls(self) -> list[str]:
        """The gRPC methods called through the proxy so far, each once it finished, with its
        HTTP status: `PollWorkflowTaskQueue 200`."""
        try:
            lines = self.access_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [line.rsplit("/", 1)[-1] for line in lines]

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.error_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> TlsProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _config(self) -> str:
        temp = self.directory / "temp"
        certificates = self.certificates
        client_certificate = (
            f"ssl_verify_client on;\n        ssl_client_certificate {certificates.ca};"
            if self.require_client_certificate
            else "ssl_verify_client off;"
        )
        api_key_check = (
            f'if ($http_authorization != "Bearer {self.api_key}") {{ return 403; }}'
            if self.api_key is not None
            else ""
        )
        # nginx answers a missing client certificate (496) or a bad one (495) with an HTML page
        # and an API key refusal (403) likewise; a gRPC client needs the status as gRPC headers.
        return f"""\
worker_processes 1;
error_log {self.error_log} warn;
pid {self.directory / "nginx.pid"};
events {{ worker_connections 64; }}
http {{
    log_format calls '$request_uri $status';
    access_log {self.access_log} calls;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen {self.host}:{self.port} ssl http2;
        ssl_certificate {certificates.server_cert};
        ssl_certificate_key {certificates.server_key};
        {client_certificate}
        error_page 403 = @permission_denied;
        error_page 495 496 = @unauthenticated;
        # Long polls last a minute; Temporal's messages reach 4 MiB.
        grpc_read_timeout 120s;
        grpc_send_timeout 120s;
        client_max_body_size 0;
        location / {{
            {api_key_check}
            grpc_pass grpc://{self.upstream};
        }}
        location @permission_denied {{
            default_type application/grpc;
            add_header grpc-status 7 always;
            add_header grpc-message "invalid API key" always;
            return 204;
        }}
        location @unauthenticated {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "a valid client certificate is required" always;
            return 204;
        }}
    }}
}}
"""

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


def _write_cert(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
