"""The local certificate for telemetry.refine.dev, made once and reused.

A small private CA signs a server certificate for telemetry.refine.dev,
localhost and 127.0.0.1. Browsers are pointed here with an SPKI pin of the
server key (``--ignore-certificate-errors-spki-list``), Node with
``NODE_EXTRA_CA_CERTS`` set to the CA. Keys are kept, so the pin is stable
across runs; a certificate near its end is re-issued with the same key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOSTNAMES = ("telemetry.refine.dev", "localhost")
IP_ADDRESSES = ("127.0.0.1", "::1")
SERVER_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertificateFiles:
    """Paths of the local CA and server certificate, and the server key's pin."""

    ca_cert: Path
    cert: Path
    key: Path
    spki_pin: str  # base64 SHA-256 of the server's SubjectPublicKeyInfo


def spki_pin(certificate: x509.Certificate) -> str:
    """Base64 SHA-256 of a certificate's public key, as Chromium's pin flag wants it."""
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def _load_or_make_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "refine Telemetry Inspector (local)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _still_good(path: Path, now: dt.datetime) -> x509.Certificate | None:
    if not path.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return None
    return cert if cert.not_valid_after_utc - now > RENEW_BEFORE else None


def ensure_certificate(directory: Path) -> CertificateFiles:
    """Make (first run) or reuse the CA, server key and certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = _load_or_make_key(directory / "ca-key.pem")
    server_key = _load_or_make_key(directory / "server-key.pem")
    ca_path, cert_path = directory / "ca.pem", directory / "server.pem"

    ca_cert = _still_good(ca_path, now)
    if ca_cert is None or ca_cert.public_key() != ca_key.public_key():
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("refine Telemetry Inspector local CA"))
            .issuer_name(_name("refine Telemetry Inspector local CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_path.unlink(missing_ok=True)  # a new CA invalidates the old server certificate

    server_cert = _still_good(cert_path, now)
    if server_cert is None or server_cert.public_key() != server_key.public_key():
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTNAMES]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in IP_ADDRESSES]
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(HOSTNAMES[0]))
            .issuer_name(ca_cert.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))

    return CertificateFiles(ca_cert=ca_path, cert=cert_path, key=directory / "server-key.pem",
                            spki_pin=spki_pin(server_cert))
