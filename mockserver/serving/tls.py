"""The local certificate for telemetry.refine.dev, made once and reused.

A small private CA signs a server certificate for telemetry.refine.dev,
localhost and 127.0.0.1. Browsers are pointed here with an SPKI pin of the
server key (``--ignore-certificate-errors-spki-list``), Node with
``NODE_EXTRA_CA_CERTS`` set to the CA. Keys are kept, so the pin is stable
across runs; a certificate near its end is re-issued with the same key.

The CA is name-constrained (critical NameConstraints: only the names above),
so a user who trusts it system-wide for hosts-file routing trusts it for
nothing else, even if its key leaks. A CA made before that (unconstrained)
is replaced, with a new CA key, on the next start; the server key and so
the pin stay. Keys are 0600 from their first byte and the folder 0700.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mockserver.storage.files import make_private_dir, restrict_to_owner, write_atomically

HOSTNAMES = ("telemetry.refine.dev", "localhost")
IP_ADDRESSES = ("127.0.0.1", "::1")
SERVER_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)
CA_NAME = "refine Telemetry Inspector local CA"
PUBLIC_FILE = 0o644  # certificates are public (Node and trust stores read them); keys are 0600


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


def _load_or_make_key(path: Path, *, fresh: bool = False) -> ec.EllipticCurvePrivateKey:
    """The key in ``path`` (its mode tightened if found loose), else (or if ``fresh``) a new one written 0600."""
    if path.exists() and not fresh:
        restrict_to_owner(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
    key = ec.generate_private_key(ec.SECP256R1())
    write_atomically(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return key


def name_constraints() -> x509.NameConstraints:
    """What the CA may sign for: the server certificate's names, nothing else."""
    permitted: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTNAMES]
    permitted += [x509.IPAddress(ipaddress.ip_network(a)) for a in IP_ADDRESSES]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)


def _constrained(ca_cert: x509.Certificate) -> bool:
    try:
        extension = ca_cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return False
    return extension.critical and extension.value == name_constraints()


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "refine Telemetry Inspector (local)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _read_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _still_good(cert: x509.Certificate | None, now: dt.datetime) -> x509.Certificate | None:
    return cert if cert is not None and cert.not_valid_after_utc - now > RENEW_BEFORE else None


def _make_ca(ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME))
        .issuer_name(_name(CA_NAME))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(name_constraints(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _make_server_cert(server_key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey,
                      ca_cert: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in HOSTNAMES]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in IP_ADDRESSES]
    return (
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


def ensure_certificate(directory: Path) -> CertificateFiles:
    """Make (first run) or reuse the CA, server key and certificate in ``directory`` (made 0700)."""
    make_private_dir(directory)
    now = dt.datetime.now(dt.UTC)
    ca_path, cert_path = directory / "ca.pem", directory / "server.pem"
    existing_ca = _read_cert(ca_path)
    # An unconstrained CA from an earlier version may be trusted system-wide:
    # its key could sign for any site, so it is retired along with its key.
    retire = existing_ca is not None and not _constrained(existing_ca)
    ca_cert = _still_good(existing_ca, now)
    ca_key = _load_or_make_key(directory / "ca-key.pem", fresh=retire)
    server_key = _load_or_make_key(directory / "server-key.pem")

    if retire or ca_cert is None or ca_cert.public_key() != ca_key.public_key():
        ca_cert = _make_ca(ca_key, now)
        write_atomically(ca_path, ca_cert.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_FILE)
        cert_path.unlink(missing_ok=True)  # a new CA invalidates the old server certificate

    server_cert = _still_good(_read_cert(cert_path), now)
    if server_cert is None or server_cert.public_key() != server_key.public_key():
        server_cert = _make_server_cert(server_key, ca_key, ca_cert, now)
        write_atomically(cert_path, server_cert.public_bytes(serialization.Encoding.PEM), mode=PUBLIC_FILE)

    return CertificateFiles(ca_cert=ca_path, cert=cert_path, key=directory / "server-key.pem",
                            spki_pin=spki_pin(server_cert))
