"""Mail transport: STARTTLS and SMTPS verify the server, and the SMTP password never goes in clear."""
from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from favsync import create_app

from conftest import PRODUCTION, VISITOR, Auth, ConfigError, Inbox
from test_outbox import outbox_rows

ATTACKER = "mail.attacker.invalid"


def self_signed(tmp_path, name: str, *, ip: str | None = None) -> tuple[str, str]:
    """Write a self-signed certificate for `name` (and `ip`) and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    names = [x509.DNSName(name)] + ([x509.IPAddress(ipaddress.ip_address(ip))] if ip else [])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(tmp_path):
    """Start a real SMTP server on 127.0.0.1 presenting a certificate for `name`, by STARTTLS
    or (implicit=True) SMTPS; return its inbox and the certificate's path."""
    controllers = []

    def start(name: str, *, ip: str | None = None, implicit: bool = False) -> tuple[Inbox, str]:
        cert, key = self_signed(tmp_path, name, ip=ip)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        inbox = Inbox()
        if implicit:
            controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, ssl_context=context)
        else:
            controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port,
                                    tls_context=context, require_starttls=True)
        controller.start()
        controllers.append(controller)
        return inbox, cert

    yield start
    for controller in controllers:
        controller.stop()


def send_link(make_app, inbox: Inbox, **settings):
    """Ask for a sign-in link on an app that mails through `inbox`'s server; return the app."""
    app = make_app(FAVSYNC_MAIL_PORT=inbox.port, **settings)
    assert Auth(app.test_client(), inbox).request_link().status_code == 202
    return app


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_a_server_with_an_untrusted_certificate_gets_no_sign_in_link(make_app, tls_server, implicit):
    inbox, _ = tls_server(ATTACKER, implicit=implicit)
    tls = {"FAVSYNC_MAIL_USE_SSL": True} if implicit else {"FAVSYNC_MAIL_USE_TLS": True}

    app = send_link(make_app, inbox, **tls)

    assert inbox.received(VISITOR) == []
    [row] = outbox_rows(app)
    assert row.status == "queued" and "SSLCertVerificationError" in row.last_error


def test_a_private_ca_named_in_the_settings_is_trusted(make_app, tls_server):
    inbox, cert = tls_server("mail.internal", ip="127.0.0.1")

    app = send_link(make_app, inbox, FAVSYNC_MAIL_USE_TLS=True, FAVSYNC_MAIL_TLS_CA_FILE=cert)

    assert len(inbox.to(VISITOR)) == 1
    assert [row.status for row in outbox_rows(app)] == ["sent"]


def test_a_trusted_ca_does_not_excuse_another_host_name(make_app, tls_server):
    inbox, cert = tls_server(ATTACKER)  # trusted, but not a certificate for 127.0.0.1

    app = send_link(make_app, inbox, FAVSYNC_MAIL_USE_TLS=True, FAVSYNC_MAIL_TLS_CA_FILE=cert)

    assert inbox.received(VISITOR) == []
    assert "SSLCertVerificationError" in outbox_rows(app)[0].last_error


def test_an_unreadable_ca_file_stops_the_app(config, tmp_path):
    with pytest.raises(ConfigError, match="FAVSYNC_MAIL_TLS_CA_FILE"):
        create_app({**config, "FAVSYNC_MAIL_TLS_CA_FILE": str(tmp_path / "missing.pem")})


SMTP_LOGIN = {**PRODUCTION, "FAVSYNC_MAIL_USERNAME": "favsync", "FAVSYNC_MAIL_PASSWORD": "smtp-password"}


def test_outside_debug_a_mail_login_without_tls_stops_the_app(config):
    with pytest.raises(ConfigError, match="FAVSYNC_MAIL_USERNAME") as refused:
        create_app({**config, **SMTP_LOGIN})

    assert "smtp-password" not in str(refused.value)


@pytest.mark.parametrize("allowed", [{"FAVSYNC_MAIL_USE_TLS": True}, {"FAVSYNC_MAIL_USE_SSL": True},
                                     {"DEBUG": True}])
def test_a_mail_login_goes_with_tls_or_in_debug(make_app, allowed):
    assert make_app(**SMTP_LOGIN, **allowed) is not None
