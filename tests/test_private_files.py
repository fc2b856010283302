"""The user's journal and keys are private: folders 0700, keys and database 0600 from their first
byte, loose modes corrected on start, and a local CA that can vouch only for the mock's own names
(checked with cryptography and through real TLS handshakes on loopback)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from mockserver.core.capture import RawRequest
from mockserver.core.config import ENV_HOME, default_db, tls_dir
from mockserver.serving import tls
from mockserver.serving.server import InspectorServer
from mockserver.storage import files
from mockserver.storage.recorder import Recorder
from mockserver.storage.store import BeaconStore

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data folder that does not exist yet, made under umask 0 so nothing is private by accident."""
    folder = tmp_path / "data" / "inspector"
    monkeypatch.setenv(ENV_HOME, str(folder))
    old = os.umask(0)
    yield folder
    os.umask(old)


def start_everything() -> tuple[BeaconStore, InspectorServer]:
    """What `serve` does: open the default journal, record one request, serve HTTPS from the data folder."""
    store = BeaconStore(default_db())
    Recorder(store).record(RawRequest("GET", "/telemetry", "payload=e30", {"Host": "telemetry.refine.dev"}))
    server = InspectorServer(store, port=0, https_port=0)
    server.start()
    return store, server


def test_a_fresh_start_makes_folders_0700_keys_and_database_0600(home):
    store, server = start_everything()
    try:
        db = Path(default_db())
        assert (mode(home), mode(tls_dir())) == (0o700, 0o700)
        assert mode(home.parent) == 0o700  # made only to hold the data folder
        assert (mode(tls_dir() / "ca-key.pem"), mode(tls_dir() / "server-key.pem")) == (0o600, 0o600)
        assert (mode(db), mode(Path(f"{db}-wal")), mode(Path(f"{db}-shm"))) == (0o600, 0o600, 0o600)
        # Certificates are public (Node's NODE_EXTRA_CA_CERTS, trust stores): readable by all.
        assert (mode(tls_dir() / "ca.pem"), mode(tls_dir() / "server.pem")) == (0o644, 0o644)
        assert sorted(p.name for p in tls_dir().iterdir()) == ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    finally:
        server.stop()
        store.close()


def test_loose_modes_found_on_start_are_corrected(home):
    store, server = start_everything()
    pin = server.listening.spki_pin
    server.stop()
    store.close()
    db = Path(default_db())
    loose = [home, tls_dir(), tls_dir() / "ca-key.pem", tls_dir() / "server-key.pem", db,
             Path(f"{db}-wal"), Path(f"{db}-shm")]
    for path in loose[-2:]:  # as an earlier version, killed, left them
        path.touch()
    for path in loose:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    store, server = start_everything()
    try:
        assert [mode(p) for p in loose] == [0o700, 0o700, 0o600, 0o600, 0o600, 0o600, 0o600]
        assert server.listening.spki_pin == pin  # the same key, only its mode changed
    finally:
        server.stop()
        store.close()


def test_a_database_folder_chosen_by_the_user_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    BeaconStore(shared / "j.sqlite3").close()
    assert (mode(shared), mode(shared / "j.sqlite3")) == (0o755, 0o600)
    BeaconStore(":memory:").close()  # nothing on disk to make private


def test_a_key_never_exists_with_a_looser_mode(tmp_path, monkeypatch):
    opened: list[tuple[str, int, int]] = []
    replaced: list[tuple[str, str, int]] = []
    real_open, real_replace = os.open, os.replace

    def recording_open(path, flags, mode=0o777, *args, **kwargs):
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    def recording_replace(src, dst):
        replaced.append((os.fspath(src), os.fspath(dst), stat.S_IMODE(os.stat(src).st_mode)))
        return real_replace(src, dst)

    def no_plain_writes(self, data):
        raise AssertionError(f"{self} written without a mode")

    monkeypatch.setattr(files.os, "open", recording_open)
    monkeypatch.setattr(files.os, "replace", recording_replace)
    monkeypatch.setattr(Path, "write_bytes", no_plain_writes)
    old = os.umask(0)
    try:
        tls.ensure_certificate(tmp_path / "tls")
    finally:
        os.umask(old)
    keys = [(src, dst, m) for src, dst, m in replaced if dst.endswith("key.pem")]
    assert [(Path(dst).name, m) for _, dst, m in keys] == [("ca-key.pem", 0o600), ("server-key.pem", 0o600)]
    for src, _, _ in keys:
        (flags, created_mode), = [(f, m) for p, f, m in opened if p == src]
        wanted = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        assert (flags & wanted, created_mode) == (wanted, 0o600)
        assert Path(src).parent == tmp_path / "tls" and Path(src).name.endswith(".part")


def test_the_ca_is_name_constrained_to_the_mocks_own_names(certificate_dir):
    files_ = tls.ensure_certificate(certificate_dir)
    ca = x509.load_pem_x509_certificate(files_.ca_cert.read_bytes())
    extension = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert extension.critical is True
    assert extension.value.permitted_subtrees == [
        x509.DNSName("telemetry.refine.dev"), x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")), x509.IPAddress(ipaddress.ip_network("::1/128"))]
    assert extension.value.excluded_subtrees is None


def _unconstrained_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A CA as versions before the name constraint made it."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, tls.CA_NAME)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))


def _leaf(hostname: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
          key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def test_an_unconstrained_ca_is_replaced_and_the_pin_kept(tmp_path):
    directory = tmp_path / "tls"
    first = tls.ensure_certificate(directory)
    old_key = _key(directory / "ca-key.pem")
    old_ca = _unconstrained_ca(old_key)
    server_key = _key(first.key)
    directory.joinpath("ca.pem").write_bytes(old_ca.public_bytes(serialization.Encoding.PEM))
    directory.joinpath("server.pem").write_bytes(
        _leaf("telemetry.refine.dev", old_key, old_ca, server_key).public_bytes(serialization.Encoding.PEM))

    again = tls.ensure_certificate(directory)
    assert again.spki_pin == first.spki_pin
    new_ca = x509.load_pem_x509_certificate(again.ca_cert.read_bytes())
    assert new_ca.extensions.get_extension_for_class(x509.NameConstraints).critical
    assert new_ca.public_key() != old_key.public_key()  # the old key, which could sign anything, is gone
    assert _key(directory / "ca-key.pem").public_key() == new_ca.public_key()
    leaf = x509.load_pem_x509_certificate(again.cert.read_bytes())
    verifier = PolicyBuilder().store(Store([new_ca])).build_server_verifier(x509.DNSName("telemetry.refine.dev"))
    assert verifier.verify(leaf, [])[-1] == new_ca
    assert tls.ensure_certificate(directory).ca_cert.read_bytes() == again.ca_cert.read_bytes()  # kept from now on


def _handshake(port: int, cafile: Path, hostname: str) -> dict[str, Any] | None:
    context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as conn:
            return conn.getpeercert()


def test_the_real_https_listener_verifies_by_name_against_the_ca(live_server, certificate_dir):
    port = live_server.listening.https_port
    for hostname in ("telemetry.refine.dev", "localhost"):
        peer = _handshake(port, certificate_dir / "ca.pem", hostname)
        assert ("DNS", "telemetry.refine.dev") in peer["subjectAltName"]


def _serve_once(cert_pem: bytes, key: ec.EllipticCurvePrivateKey, tmp_path: Path) -> tuple[int, threading.Thread]:
    """A TLS server on loopback that presents ``cert_pem`` to one client."""
    (tmp_path / "leaf.pem").write_bytes(cert_pem)
    (tmp_path / "leaf-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.parametrize("constrained", [True, False], ids=["constrained-ca", "old-unconstrained-ca"])
def test_a_certificate_for_another_site_signed_by_the_ca_key_is_refused(tmp_path, constrained):
    files_ = tls.ensure_certificate(tmp_path / "tls")
    ca_key = _key(tmp_path / "tls" / "ca-key.pem")
    ca = x509.load_pem_x509_certificate(files_.ca_cert.read_bytes())
    if not constrained:  # the control: the same key, as an earlier version's CA, vouches for any site
        ca = _unconstrained_ca(ca_key)
        (tmp_path / "old-ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cafile = files_.ca_cert if constrained else tmp_path / "old-ca.pem"
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _leaf("evil.example", ca_key, ca, leaf_key)
    port, thread = _serve_once(leaf.public_bytes(serialization.Encoding.PEM), leaf_key, tmp_path)
    try:
        if constrained:
            with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
                _handshake(port, cafile, "evil.example")
        else:
            assert ("DNS", "evil.example") in _handshake(port, cafile, "evil.example")["subjectAltName"]
    finally:
        thread.join(timeout=10)
