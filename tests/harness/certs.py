"""Throwaway X.509 certificates for TLS tests, made with the ``openssl`` command line.

``make_ca()`` writes a self-signed certificate authority; ``make_server_certificate()`` writes a
server certificate signed by it for an IP address (subjectAltName ``IP:127.0.0.1`` by default),
so a client that verifies against the CA and checks the host name accepts a loopback broker.
``make_tls_files()`` does both in one directory.

Keys are EC P-256 (fast to generate). The extensions are the ones Python's strict verification
(``ssl.VERIFY_X509_STRICT``, on by default in ``ssl.create_default_context()`` from Python 3.13)
expects: a critical ``basicConstraints`` and ``keyUsage`` on the CA, key identifiers on both, and
``extendedKeyUsage = serverAuth`` on the server certificate. They are valid for two days.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL_FALLBACK = Path("/usr/bin/openssl")
DAYS = "2"
KEY_ALGORITHM = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
CA_EXTENSIONS = [
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
]
SERVER_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate (PEM) and its private key."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TlsFiles:
    """What a TLS server needs (``cert_file``, ``key_file``) and what its clients trust."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def find_openssl() -> Path:
    """The ``openssl`` binary on PATH, else /usr/bin/openssl; RuntimeError if absent."""
    found = shutil.which("openssl")
    if found is not None:
        return Path(found)
    if os.access(OPENSSL_FALLBACK, os.X_OK):
        return OPENSSL_FALLBACK
    raise RuntimeError(f"openssl was not found on PATH nor at {OPENSSL_FALLBACK}")


def _openssl(*args: str) -> None:
    result = subprocess.run(
        [str(find_openssl()), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"openssl {args[0]} failed with status {result.returncode}: {result.stderr.strip()}"
        )


def make_ca(
    directory: Path, name: str = "ca", common_name: str | None = None
) -> CertificateAuthority:
    """A new self-signed CA in ``directory``: ``<name>.pem`` and ``<name>.key``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    subject = common_name or f"condor-monitor test CA {secrets.token_hex(4)}"
    _openssl(
        "req",
        "-x509",
        *KEY_ALGORITHM,
        "-keyout",
        str(key_file),
        "-out",
        str(cert_file),
        "-days",
        DAYS,
        "-subj",
        f"/CN={subject}",
        *CA_EXTENSIONS,
    )
    return CertificateAuthority(cert_file, key_file)


def make_server_certificate(
    ca: CertificateAuthority,
    directory: Path,
    name: str = "server",
    ip: str = "127.0.0.1",
) -> TlsFiles:
    """A server certificate for ``ip`` signed by ``ca``: ``<name>.pem`` and ``<name>.key``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    request, extensions = directory / f"{name}.csr", directory / f"{name}.ext"
    extensions.write_text(SERVER_EXTENSIONS.format(san=f"IP:{ip}"))
    _openssl(
        "req",
        "-new",
        *KEY_ALGORITHM,
        "-keyout",
        str(key_file),
        "-out",
        str(request),
        "-subj",
        f"/CN={ip}",
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca.cert_file),
        "-CAkey",
        str(ca.key_file),
        "-set_serial",
        f"0x{secrets.token_hex(16)}",
        "-days",
        DAYS,
        "-extfile",
        str(extensions),
        "-out",
        str(cert_file),
    )
    return TlsFiles(ca.cert_file, cert_file, key_file)


def make_tls_files(directory: Path, ip: str = "127.0.0.1") -> TlsFiles:
    """A fresh CA and a server certificate for ``ip`` signed by it, all in ``directory``."""
    return make_server_certificate(make_ca(directory), directory, ip=ip)
