"""The embedded default: with no SMTP server configured, an email is kept in the capture mailbox, not dropped.

SQLite only: the production backend's worker process is started with the test SMTP peer configured."""

from server import config
from tests.channels.test_send_email import deal_with_client, message_of
from tests.support import add_rule, make_pipeline


async def test_without_smtp_configured_the_email_waits_in_the_capture_mailbox(db, smtp, monkeypatch):
    monkeypatch.setenv("PIPEWRIGHT_SMTP_URL", "")
    config.reload()
    _, stages = await make_pipeline()
    await add_rule(stages["new"], "send_email", {"subject": "Hi {{deal.title}}", "text": "Hello"})
    deal = await deal_with_client(stages["new"], title="Acme")

    message = await message_of(deal, "sent")

    assert message.transport == "capture" and message.subject == "Hi Acme"
    assert "capture mailbox" in message.answer
    assert smtp.messages() == []
