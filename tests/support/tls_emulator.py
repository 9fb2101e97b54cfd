"""A test-only stand-in for the pulumi-tls provider that issues real keys and certificates.

Under Pulumi's mocks no provider runs, so this turns the inputs the program gives
``tls:index/*`` resources into what the provider would compute, with ``cryptography``:
key algorithm and size, subject, DNS names, key usages and extended key usages from
``allowed_uses``, the CA flag and the validity window. Like state in a real stack, the
same resource with the same inputs gets the same material on a second evaluation.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from harness import reveal

_CURVES = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}
# pulumi-tls (Terraform) allowed_uses -> cryptography's KeyUsage fields.
_KEY_USAGES = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}
_EXTENDED = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
}
_NAME_FIELDS = {
    "commonName": NameOID.COMMON_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "country": NameOID.COUNTRY_NAME,
    "province": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME,
}


class TlsEmulator:
    """Callable emulator for ``harness.ProgramMocks``.

    ``backdate`` maps resource names to how long ago they are issued, to make expired
    certificates (a certificate is issued at the moment the provider creates it).

    The SDK registers resources from several threads at once, so each issue time travels
    as an argument, never through shared state, and issuing is serialised per emulator.
    """

    def __init__(self, backdate: dict[str, datetime.timedelta] | None = None):
        self.backdate = backdate or {}
        self._issued: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any] | None:
        if not args.typ.startswith("tls:index/"):
            return None
        inputs = reveal(args.inputs)
        key = (args.typ, args.name, json.dumps(inputs, sort_keys=True))
        with self._lock:
            if key not in self._issued:
                kind = args.typ.rsplit(":", 1)[-1]
                issued_at = datetime.datetime.now(datetime.UTC) - self.backdate.get(args.name, datetime.timedelta())
                self._issued[key] = getattr(self, f"_{kind}")(inputs, issued_at)
            return self._issued[key]

    # -- resources ---------------------------------------------------------------------
    def _PrivateKey(self, inputs: dict, issued_at: datetime.datetime) -> dict:
        algorithm = inputs["algorithm"]
        if algorithm == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
            private_format = serialization.PrivateFormat.TraditionalOpenSSL
        elif algorithm == "ECDSA":
            key = ec.generate_private_key(_CURVES[inputs.get("ecdsaCurve", "P224")]())
            private_format = serialization.PrivateFormat.TraditionalOpenSSL
        elif algorithm == "ED25519":
            key = ed25519.Ed25519PrivateKey.generate()
            private_format = serialization.PrivateFormat.PKCS8
        else:
            raise ValueError(f"unsupported algorithm {algorithm}")
        return {
            "privateKeyPem": _pem_key(key, private_format),
            "privateKeyPemPkcs8": _pem_key(key, serialization.PrivateFormat.PKCS8),
            "publicKeyPem": key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
        }

    def _CertRequest(self, inputs: dict, issued_at: datetime.datetime) -> dict:
        key = _load_key(inputs["privateKeyPem"])
        builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
        if inputs.get("dnsNames"):
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in inputs["dnsNames"]]), critical=False
            )
        csr = builder.sign(key, _digest(key))
        return {"certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}

    def _SelfSignedCert(self, inputs: dict, issued_at: datetime.datetime) -> dict:
        key = _load_key(inputs["privateKeyPem"])
        subject = _name(inputs.get("subject"))
        dns_names = inputs.get("dnsNames") or []
        return self._issue(inputs, issued_at, subject, subject, key.public_key(), key, dns_names, None)

    def _LocallySignedCert(self, inputs: dict, issued_at: datetime.datetime) -> dict:
        csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        ca_key = _load_key(inputs["caPrivateKeyPem"])
        try:
            names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns_names = names.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            dns_names = []
        return self._issue(
            inputs, issued_at, csr.subject, ca_cert.subject, csr.public_key(), ca_key, dns_names, ca_cert
        )

    # -- issuing -------------------------------------------------------------------------
    def _issue(self, inputs, now, subject, issuer, public_key, signing_key, dns_names, ca_cert) -> dict:
        not_after = now + datetime.timedelta(hours=int(inputs["validityPeriodHours"]))
        uses = set(inputs.get("allowedUses") or [])
        is_ca = bool(inputs.get("isCaCertificate"))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        if uses & set(_KEY_USAGES):
            flags = {field: use in uses for use, field in _KEY_USAGES.items()}
            builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
        extended = [_EXTENDED[u] for u in sorted(uses) if u in _EXTENDED]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        if dns_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
            )
        if inputs.get("setSubjectKeyId"):
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        if ca_cert is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
            )
        cert = builder.sign(signing_key, _digest(signing_key))
        return {
            "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "validityStartTime": now.isoformat(),
            "validityEndTime": not_after.isoformat(),
            "readyForRenewal": False,
        }


def _pem_key(key, private_format) -> str:
    return key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption()).decode()


def _load_key(pem: str):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _digest(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(subject: dict | None) -> x509.Name:
    subject = subject or {}
    return x509.Name(
        [x509.NameAttribute(oid, str(subject[field])) for field, oid in _NAME_FIELDS.items() if subject.get(field)]
    )
