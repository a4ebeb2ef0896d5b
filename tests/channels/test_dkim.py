"""DKIM: with PIPEWRIGHT_DKIM_KEY_FILE set, the email the SMTP peer receives verifies with dkimpy against the
public key a DNS TXT record `<selector>._domainkey.<domain>` would publish; a changed body does not.

SQLite only: the key is configured in this process, where the embedded worker sends (the production backend's
worker process is started before any test and keeps its environment).
"""

import base64
import secrets
from collections.abc import Callable, Iterator
from math import gcd
from pathlib import Path

import dkim
import pytest

from server import config
from server.actor import SYSTEM
from server.services import elements as element_service
from tests.channels.test_send_email import deal_with_client, message_of
from tests.support import add_rule, make_pipeline, wait_until
from tests.support.peers import Received, SmtpPeer

SELECTOR, DOMAIN = "crm2031", "acme-sales.example"


# ---------------------------------------------------------------- an RSA key, without a crypto package


def _probable_prime(bits: int) -> int:
    small = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p ** 0.5) + 1, 2))]
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if any(candidate % p == 0 for p in small):
            continue
        d, r = candidate - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(40):  # Miller-Rabin
            x = pow(secrets.randbelow(candidate - 3) + 2, d, candidate)
            if x in (1, candidate - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, candidate)
                if x == candidate - 1:
                    break
            else:
                break
        else:
            return candidate


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes(
        (size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # a leading zero keeps it positive


def _sequence(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def rsa_key(bits: int = 1024) -> tuple[bytes, str]:
    """(the private key as PKCS#1 PEM, the DNS TXT record of its public key). 1024 bits: the least dkimpy accepts,
    and quick to make in Python."""
    e = 65537
    while True:
        p, q = _probable_prime(bits // 2), _probable_prime(bits // 2)
        if p != q and gcd(e, (p - 1) * (q - 1)) == 1:
            break
    n, d = p * q, pow(e, -1, (p - 1) * (q - 1))
    private = _sequence(*map(_integer, (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))))
    rsa_encryption = _sequence(_der(0x06, bytes.fromhex("2a864886f70d010101")), _der(0x05, b""))
    public = _sequence(rsa_encryption, _der(0x03, b"\x00" + _sequence(_integer(n), _integer(e))))
    body = base64.encodebytes(private).decode().replace("\n", "")
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) \
        + "\n-----END RSA PRIVATE KEY-----\n"
    return pem.encode(), f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, str]:
    return rsa_key()


@pytest.fixture
def dns_record(key_pair: tuple[bytes, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A DKIM key configured for this process; the TXT record DNS would answer for it."""
    key, record = key_pair
    (tmp_path / "dkim.pem").write_bytes(key)
    monkeypatch.setenv("PIPEWRIGHT_DKIM_KEY_FILE", str(tmp_path / "dkim.pem"))
    monkeypatch.setenv("PIPEWRIGHT_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("PIPEWRIGHT_DKIM_DOMAIN", DOMAIN)
    config.reload()
    yield record
    for name in ("PIPEWRIGHT_DKIM_KEY_FILE", "PIPEWRIGHT_DKIM_SELECTOR", "PIPEWRIGHT_DKIM_DOMAIN"):
        monkeypatch.delenv(name)
    config.reload()


def dns(record: str) -> Callable[..., bytes | None]:
    """dkimpy's DNS lookup, answered for our selector and domain only."""
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


async def signed_email(smtp: SmtpPeer) -> Received:
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "send_email", {
        "subject": "Your offer: {{deal.title}}",
        "html": '<p>Hello {{deal.contact.name}},</p><p><a href="https://acme.example/offer">the offer</a></p>'})
    deal = await deal_with_client(stages["new"])
    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)
    await message_of(deal, "sent")

    async def arrived() -> list[Received]:
        return smtp.messages()

    [received] = await wait_until(arrived, what="the email at the SMTP peer")
    return received


async def test_a_signed_email_verifies_with_the_published_key(db, smtp, dns_record):
    received = await signed_email(smtp)

    signature = received.message["DKIM-Signature"]
    tags = {k.strip(): v.strip() for k, _, v in (t.partition("=") for t in signature.replace("\r\n", "").split(";"))}
    assert (tags["d"], tags["s"], tags["c"], tags["a"]) == (DOMAIN, SELECTOR, "relaxed/relaxed", "rsa-sha256")
    assert {"from", "to", "subject", "date", "message-id"} <= {h.strip() for h in tags["h"].lower().split(":")}
    assert dkim.verify(received.raw, dnsfunc=dns(dns_record))


async def test_a_changed_body_or_subject_or_an_added_header_fails_verification(db, smtp, dns_record):
    received = await signed_email(smtp)
    assert b"Hello Anna Berg," in received.raw and b"Reply-To" not in received.raw

    def added(header: bytes) -> bytes:  # above the headers we wrote, where a reader's client finds it first
        return received.raw.replace(b"\r\nFrom: ", b"\r\n" + header + b"\r\nFrom: ", 1)

    tampered = {
        "body": received.raw.replace(b"Hello Anna Berg,", b"Hello Anna Borg,"),
        "subject": received.raw.replace(b"Subject: Your offer", b"Subject: Your order"),
        "second subject": added(b"Subject: Your invoice is overdue"),
        "reply-to": added(b"Reply-To: pay@elsewhere.example"),
        "second from": added(b"From: boss@acme-sales.example"),
    }
    for what, changed in tampered.items():
        assert changed != received.raw, what
        assert not dkim.verify(changed, dnsfunc=dns(dns_record)), what
    _, other_record = rsa_key()
    assert not dkim.verify(received.raw, dnsfunc=dns(other_record))  # someone else's key
