"""The SuccessFactors sandbox's OAuth 2.0 SAML bearer token endpoint (connectors.md §3.1).

``POST /oauth/token`` takes ``client_id`` (the API key of a registered OAuth client),
``company_id``, ``grant_type=urn:ietf:params:oauth:grant-type:saml2-bearer`` and a base64
SAML 2.0 ``assertion`` (form field names [inferred], §3.1). The assertion's XML signature
must verify against the X.509 certificate registered with that client, its issuer must be
the client_id, its audience ``www.successfactors.com`` and its recipient the tenant's
``/odata/v2`` (Jitterbit's SuccessFactors provider), and it must not have expired. The
answer is an RFC 6749 §5.1 token with ``expires_in``; an expired token is answered 401 on
data calls, so a client has to obtain a new one. ``/oauth/idp`` is not offered (SAP calls
it insecure and deprecated, KBA 3462403).

Refusals follow RFC 6749 §5.2 (``{"error": "invalid_grant", ...}``, HTTP 400) [inferred:
SAP's exact refusal body is not documented in the sources we have].
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"
AUDIENCE = "www.successfactors.com"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


class TokenRefusal(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def make_key_pair(common_name: str = "rostersync-sandbox") -> tuple[bytes, bytes]:
    """(private key PEM, self-signed certificate PEM): what an admin generates and
    registers with the OAuth client in SuccessFactors (tests and the demo use it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return private, cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class OAuthClient:
    client_id: str
    certificate: bytes  # PEM, as registered in Manage OAuth2 Client Applications


class TokenIssuer:
    """Registered clients, and the tokens issued to them with their expiry."""

    def __init__(self, company_id: str, clock: Callable[[], datetime],
                 lifetime: timedelta = timedelta(hours=24)) -> None:
        self.company_id = company_id
        self.clock = clock
        self.lifetime = lifetime
        self.clients: dict[str, OAuthClient] = {}
        # The status an expired or unknown token gets on the API: 401 [inferred]; SAP's
        # KBA 2524436 lists token errors under 403 as well, so tests try both.
        self.expired_status = 401
        self.issued = 0
        self._tokens: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def register(self, client_id: str, certificate: bytes) -> None:
        self.clients[client_id] = OAuthClient(client_id, certificate)

    def valid(self, token: str) -> bool:
        with self._lock:
            found = [t for t in self._tokens if hmac.compare_digest(t.encode(), token.encode())]
            return bool(found) and self.clock() < self._tokens[found[0]]

    def answer(self, body: bytes, origin: str) -> dict[str, Any]:
        """The token answer to a form body, or TokenRefusal."""
        form = {k: v[-1] for k, v in parse_qs(body.decode("latin-1")).items()}
        if form.get("grant_type") != GRANT_TYPE:
            raise TokenRefusal(400, "unsupported_grant_type", "grant_type must be saml2-bearer")
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            raise TokenRefusal(401, "invalid_client", "unknown client_id (API key)")
        if form.get("company_id") != self.company_id:
            raise TokenRefusal(400, "invalid_grant", "unknown company_id")
        try:
            xml = base64.b64decode(form.get("assertion", ""), validate=True)
        except (binascii.Error, ValueError):
            raise TokenRefusal(400, "invalid_grant", "the assertion is not base64") from None
        self._check(xml, client, origin)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self.clock() + self.lifetime
            self.issued += 1
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": int(self.lifetime.total_seconds())}

    def _check(self, xml: bytes, client: OAuthClient, origin: str) -> None:
        from signxml import XMLVerifier
        from signxml.exceptions import InvalidInput, InvalidSignature

        try:
            verified = XMLVerifier().verify(xml, x509_cert=client.certificate.decode(),
                                            id_attribute="ID")
        except (InvalidSignature, InvalidInput, ValueError):
            raise TokenRefusal(400, "invalid_grant", "the assertion's signature does not "
                               "verify against the registered certificate") from None
        root = verified.signed_xml  # only what the signature covers counts
        ns = {"s": SAML}
        issuer = root.findtext("s:Issuer", namespaces=ns)
        audience = root.findtext("s:Conditions/s:AudienceRestriction/s:Audience", namespaces=ns)
        data = root.find("s:Subject/s:SubjectConfirmation/s:SubjectConfirmationData",
                         namespaces=ns)
        conditions = root.find("s:Conditions", namespaces=ns)
        if issuer != client.client_id:
            raise TokenRefusal(400, "invalid_grant", "the assertion's issuer is not the client")
        if audience != AUDIENCE:
            raise TokenRefusal(400, "invalid_grant", f"the audience must be {AUDIENCE}")
        if data is None or data.get("Recipient", "").rstrip("/") not in (
                f"{origin}/odata/v2", f"{_portless(origin)}/odata/v2"):
            raise TokenRefusal(400, "invalid_grant", "the recipient must be {api}/odata/v2")
        until = conditions.get("NotOnOrAfter") if conditions is not None else None
        try:
            expired = until is None or self.clock() >= datetime.fromisoformat(
                until.replace("Z", "+00:00"))
        except ValueError:
            expired = True
        if expired:
            raise TokenRefusal(400, "invalid_grant", "the assertion has expired")


def _portless(origin: str) -> str:
    scheme, _, rest = origin.partition("://")
    host, _, port = rest.rpartition(":")
    default = {"http": "80", "https": "443"}.get(scheme)
    return f"{scheme}://{host}" if host and port == default else origin
