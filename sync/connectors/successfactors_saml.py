"""The OAuth 2.0 SAML bearer grant for SuccessFactors (docs/successfactors.md §3.1).

SAP's OData API takes a bearer token obtained by posting a signed SAML 2.0 assertion to
``{api-server}/oauth/token`` with the API key (``client_id``) and the company id
(connectors.md §3.1; Jitterbit's SuccessFactors provider). The assertion is built and
signed here with the private key whose certificate is registered with the OAuth client,
so no third-party IdP is needed. ``/oauth/idp``, SAP's assertion-issuing endpoint, is
never used: SAP calls it insecure and deprecated (KBA 3462403).

Assertion defaults (Jitterbit): audience ``www.successfactors.com``, recipient
``{api-server}/odata/v2``, issuer the ``client_id``; the subject is the API user.
The form field names are [inferred] (connectors.md §3.1).

The signing is done by signxml (XML-DSig, enveloped, RSA-SHA256, exclusive c14n); a
hand-written canonicaliser is exactly where signature bugs live.
"""

from __future__ import annotations

import base64
import os
import stat
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from rostersync.sync.connectors.oauth_tokens import RefreshingBearer, TokenRefused, grant_sender
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig

AUDIENCE = "www.successfactors.com"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:saml2-bearer"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
# The assertion may be presented a little before the issuer's clock says it exists.
CLOCK_SKEW = timedelta(seconds=60)


def token_url(config: SuccessFactorsSourceConfig) -> str:
    return config.token_url or f"{config.base_url}/oauth/token"


def read_private_key(config: SuccessFactorsSourceConfig) -> bytes:
    """The PEM private key, from a file only its owner can read or from the environment;
    one sentence naming the config key when it cannot be had, never the key itself."""
    if config.private_key_env:
        value = os.environ.get(config.private_key_env)
        if not value:
            raise TokenRefused(f"hris.private_key_env: environment variable "
                               f"{config.private_key_env} is not set")
        return value.encode()
    path = Path(config.private_key_file or "")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077 and os.name == "posix":
            raise TokenRefused(f"hris.private_key_file {path} can be read by other users "
                            f"(mode {mode:04o}); make it readable by its owner only "
                            "(chmod 600)")
        return path.read_bytes()
    except OSError as exc:
        raise TokenRefused(f"hris.private_key_file {path} cannot be read "
                        f"({exc.strerror or type(exc).__name__})") from None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_assertion(*, client_id: str, user_id: str, recipient: str, now: datetime,
                    lifetime: timedelta) -> bytes:
    """An unsigned SAML 2.0 assertion, with the place its signature goes (after Issuer,
    as the SAML schema orders them)."""
    from lxml import etree

    s = f"{{{SAML}}}"
    issued, until = _stamp(now), _stamp(now + lifetime)
    root = etree.Element(s + "Assertion", nsmap={"saml2": SAML},
                         ID=f"_{uuid.uuid4().hex}", IssueInstant=issued, Version="2.0")
    etree.SubElement(root, s + "Issuer").text = client_id
    etree.SubElement(root, f"{{{DSIG}}}Signature", Id="placeholder", nsmap={"ds": DSIG})
    subject = etree.SubElement(root, s + "Subject")
    etree.SubElement(subject, s + "NameID",
                     Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
                     ).text = user_id
    confirmation = etree.SubElement(subject, s + "SubjectConfirmation",
                                    Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
    etree.SubElement(confirmation, s + "SubjectConfirmationData", NotOnOrAfter=until,
                     Recipient=recipient)
    conditions = etree.SubElement(root, s + "Conditions",
                                  NotBefore=_stamp(now - CLOCK_SKEW), NotOnOrAfter=until)
    restriction = etree.SubElement(conditions, s + "AudienceRestriction")
    etree.SubElement(restriction, s + "Audience").text = AUDIENCE
    statement = etree.SubElement(root, s + "AuthnStatement", AuthnInstant=issued,
                                 SessionIndex=root.get("ID"))
    context = etree.SubElement(statement, s + "AuthnContext")
    etree.SubElement(context, s + "AuthnContextClassRef").text = (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
    attributes = etree.SubElement(root, s + "AttributeStatement")
    api_key = etree.SubElement(attributes, s + "Attribute", Name="api_key")
    etree.SubElement(api_key, s + "AttributeValue").text = client_id
    return etree.tostring(root)


def sign_assertion(assertion: bytes, private_key: bytes) -> bytes:
    """The assertion with an enveloped XML signature over its ID (RSA-SHA256)."""
    from lxml import etree
    from signxml import CanonicalizationMethod, XMLSigner

    root = etree.fromstring(assertion)
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(root, key=private_key, reference_uri=root.get("ID"),
                         id_attribute="ID")
    return etree.tostring(signed)


def saml_bearer(config: SuccessFactorsSourceConfig, client: httpx.Client,
                monotonic: Callable[[], float], *,
                now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> RefreshingBearer:
    """An httpx.Auth that obtains tokens with a freshly signed assertion each time one is
    needed (before expiry, or once after a 401)."""
    where = ("hris.private_key_env" if config.private_key_env else "hris.private_key_file")
    endpoint = token_url(config)

    def token_request() -> httpx.Request:
        key = read_private_key(config)
        unsigned = build_assertion(
            client_id=config.client_id or "", user_id=config.user_id or "",
            recipient=f"{config.base_url}/odata/v2", now=now(),
            lifetime=timedelta(seconds=config.assertion_lifetime_seconds))
        try:
            signed = sign_assertion(unsigned, key)
        except Exception as exc:  # any key problem is one sentence, never a traceback
            raise TokenRefused(f"SuccessFactors OAuth: the private key named by {where} "
                               f"cannot sign the assertion ({type(exc).__name__}); it must "
                               "be an unencrypted PEM RSA key") from None
        form = {"client_id": config.client_id or "", "company_id": config.company_id,
                "grant_type": GRANT_TYPE,
                "assertion": base64.b64encode(signed).decode("ascii")}
        return httpx.Request("POST", endpoint, data=form,
                             headers={"Accept": "application/json"})

    # SAP answers some expired-token calls with 403 rather than 401 (KBA 2524436): one
    # new token and one replay settle which it was; a second 403 is a real refusal.
    what = f"SuccessFactors token endpoint {endpoint}"
    return RefreshingBearer(token_request, what, send=grant_sender(client, config, what),
                            now=monotonic, renew_on=frozenset({401, 403}))
