"""A real HTTPS server on 127.0.0.1 with a self-signed certificate, for the TLS tests.

The certificate is made on the spot: with the ``cryptography`` package when it is
installed, else with the ``openssl`` command. Any sandbox can be served over TLS: its
ASGI app moves to a uvicorn server that listens with the certificate, and its base URL
becomes ``https://``.

    with over_tls(BambooSandbox(api_key="k"), certificate(tmp_path)) as (hris, counted):
        hris.base_url  # "https://127.0.0.1:PORT/api/gateway.php/acme"
        counted.requests  # how many requests got past the TLS handshake
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rostersync.sandbox.serving import LoopbackServer

HOST = "127.0.0.1"


def certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) files of a self-signed certificate for 127.0.0.1."""
    cert, key = folder / "self-signed.pem", folder / "self-signed.key"
    try:
        _with_cryptography(cert, key)
    except ImportError:
        _with_openssl(cert, key)
    return cert, key


def _with_cryptography(cert: Path, key: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    built = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
             .public_key(private.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(minutes=5))
             .not_valid_after(now + timedelta(days=1))
             .add_extension(x509.SubjectAlternativeName(
                 [x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
             .sign(private, hashes.SHA256()))
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


def _with_openssl(cert: Path, key: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("neither the cryptography package nor the openssl command is "
                           "available to make a test certificate")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)


class Counted:
    """The sandbox's ASGI app, counting the HTTP requests that got through the handshake."""

    def __init__(self, app: Any) -> None:
        self.app, self.requests = app, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


@contextmanager
def over_tls(sandbox: Any, files: tuple[Path, Path]) -> Iterator[tuple[Any, Counted]]:
    """Start ``sandbox`` on HTTPS instead of HTTP (same app, same port choice); yields it
    and the counter of requests its app received."""
    plain: LoopbackServer = sandbox._server
    app = Counted(plain._config.app)
    tls = LoopbackServer(app, f"{plain.name}-tls", HOST, 0, lifespan=plain._config.lifespan)
    # uvicorn builds its SSL context from these when it starts.
    tls._config.ssl_certfile, tls._config.ssl_keyfile = str(files[0]), str(files[1])
    sandbox._server = tls
    sandbox.start()
    sandbox.base_url = sandbox.base_url.replace("http://", "https://", 1)
    try:
        yield sandbox, app
    finally:
        sandbox.stop()
