"""Reading delivery reports as real mail servers write them: a Postfix hard bounce, an Exim delay warning, an
ARF complaint as a mailbox provider sends it, and mail that is no report at all."""

import email
import email.policy
from email.message import EmailMessage

from server.channels.bounces import report_of

UID = "0123456789abcdef0123456789abcdef"


def postfix_bounce(uid: str = UID, *, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A Postfix DSN for a rejected recipient, quoting the returned message's headers (text/rfc822-headers)."""
    return f"""Return-Path: <>
Received: by mx.acme.example (Postfix) id 3F1A2; Tue,  1 Dec 2026 14:10:02 +0000 (UTC)
Date: Tue,  1 Dec 2026 14:10:02 +0000 (UTC)
From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: pipewright@localhost
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="3F1A2.1764598202/mx.acme.example"
Content-Transfer-Encoding: 8bit
Message-Id: <20261201141002.3F1A2@mx.acme.example>

This is a MIME-encapsulated message.

--3F1A2.1764598202/mx.acme.example
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.acme.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<anna@acme.example>: host mail.acme.example[192.0.2.7] said: 550 5.1.1
    <anna@acme.example>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--3F1A2.1764598202/mx.acme.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example
X-Postfix-Queue-ID: 3F1A2
X-Postfix-Sender: rfc822; pipewright@localhost
Arrival-Date: Tue,  1 Dec 2026 14:10:01 +0000 (UTC)

Final-Recipient: rfc822; Anna@acme.example
Original-Recipient: rfc822;Anna@acme.example
Action: {action}
Status: {status}
Remote-MTA: dns; mail.acme.example
Diagnostic-Code: smtp; 550 5.1.1 <anna@acme.example>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F1A2.1764598202/mx.acme.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <pipewright@localhost>
Message-ID: <{uid}@localhost>
From: pipewright@localhost
To: anna@acme.example
Subject: Your offer

--3F1A2.1764598202/mx.acme.example--
""".replace("\n", "\r\n").encode()


def exim_delay(uid: str = UID) -> bytes:
    """Exim's delay warning: Action delayed, a 4.x.x status, the original message attached as message/rfc822."""
    return f"""From: Mail Delivery System <Mailer-Daemon@smtp.acme.example>
To: pipewright@localhost
Subject: Warning: message 1vQd2c-0004Xy-Qs delayed 24 hours
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=1764598202-eximdsn-1804289383
X-Failed-Recipients: anna@acme.example
Auto-Submitted: auto-replied

--1764598202-eximdsn-1804289383
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on smtp.acme.example.

--1764598202-eximdsn-1804289383
Content-type: message/delivery-status

Reporting-MTA: dns; smtp.acme.example

Action: delayed
Final-Recipient: rfc822;anna@acme.example
Status: 4.4.7
Remote-MTA: dns; mail.acme.example
Diagnostic-Code: smtp; 451 4.7.1 Greylisted, please try again later
Will-Retry-Until: Tue, 08 Dec 2026 14:10:01 +0000

--1764598202-eximdsn-1804289383
Content-type: message/rfc822

Message-ID: <{uid}@localhost>
From: pipewright@localhost
To: anna@acme.example
Subject: Your offer
Content-Type: text/plain

Hello Anna, the offer.

--1764598202-eximdsn-1804289383--
""".replace("\n", "\r\n").encode()


def arf_complaint(uid: str = UID) -> bytes:
    """An RFC 5965 feedback report (Feedback-Type abuse) as a mailbox provider's feedback loop sends it."""
    return f"""From: <staff@fbl.mailbox.example>
Date: Wed, 2 Dec 2026 09:12:44 +0000
Subject: FW: Your offer
To: <abuse@pipewright.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Tue, 1 Dec 2026 14:10:01 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <pipewright@localhost>
Original-Rcpt-To: <anna@acme.example>
Arrival-Date: Tue, 1 Dec 2026 14:10:01 +0000
Reported-Domain: localhost
Source-IP: 192.0.2.1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <pipewright@localhost>
Received: from mailserver.pipewright.example (mailserver.pipewright.example [192.0.2.1])
        by mx.mailbox.example; Tue, 1 Dec 2026 14:10:01 +0000
To: <anna@acme.example>
Subject: Your offer
Message-ID: <{uid}@localhost>
Date: Tue, 1 Dec 2026 14:10:00 +0000

Hello Anna, the offer.

--part1_13d.2e68ed54_boundary--
""".replace("\n", "\r\n").encode()


def parsed(raw: bytes) -> EmailMessage:
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def test_a_postfix_hard_bounce_names_our_message_the_recipient_and_the_servers_answer():
    report = report_of(parsed(postfix_bounce()))

    assert report is not None and report.kind == "delivery"
    assert report.uids == [UID]
    [recipient] = report.recipients
    assert recipient.address == "anna@acme.example"  # lower-cased, as the suppression list compares
    assert (recipient.action, recipient.status) == ("failed", "5.1.1")
    assert recipient.diagnostic == ("550 5.1.1 <anna@acme.example>: Recipient address rejected: "
                                    "User unknown in virtual mailbox table")  # unfolded, the "smtp;" type dropped
    assert recipient.permanent and not recipient.transient


def test_an_exim_delay_warning_is_transient_and_finds_the_attached_original():
    report = report_of(parsed(exim_delay()))

    assert report is not None and report.uids == [UID]
    [recipient] = report.recipients
    assert (recipient.action, recipient.status) == ("delayed", "4.4.7")
    assert recipient.diagnostic == "451 4.7.1 Greylisted, please try again later"
    assert recipient.transient and not recipient.permanent


def test_a_failure_with_a_4xx_status_is_not_a_hard_bounce():
    [recipient] = report_of(parsed(postfix_bounce(status="4.2.2"))).recipients  # type: ignore[union-attr]

    assert not recipient.permanent and recipient.transient


def test_an_arf_complaint_names_our_message_and_the_complaining_recipient():
    report = report_of(parsed(arf_complaint()))

    assert report is not None and report.kind == "complaint"
    assert report.uids == [UID]
    assert report.feedback_type == "abuse"
    assert report.complainant == "anna@acme.example"
    assert report.recipients == []


def test_a_report_quoting_only_foreign_message_ids_names_none_of_ours():
    raw = postfix_bounce().replace(f"<{UID}@localhost>".encode(), b"<CAF=x7Yq+abc@mail.gmail.com>")

    report = report_of(parsed(raw))

    assert report is not None and report.uids == [] and report.recipients[0].permanent


def test_a_report_without_the_original_is_found_by_its_in_reply_to():
    raw = postfix_bounce().replace(f"Message-ID: <{UID}@localhost>\r\n".encode(), b"").replace(
        b"Auto-Submitted:", f"In-Reply-To: <{UID}@localhost>\r\nAuto-Submitted:".encode())

    assert report_of(parsed(raw)).uids == [UID]  # type: ignore[union-attr]


def test_a_customers_mail_is_no_report():
    mail = EmailMessage()
    mail["From"] = "Anna Berg <anna@acme.example>"
    mail["Subject"] = "Re: Your offer"
    mail["In-Reply-To"] = f"<{UID}@localhost>"
    mail.set_content("Yes, let's go.")
    mail.add_alternative("<p>Yes, let's go.</p>", subtype="html")

    assert report_of(parsed(mail.as_bytes())) is None
