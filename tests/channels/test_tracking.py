"""Open and link tracking: a sent email carries a pixel and signed redirect links; fetching them records
"opened" / "link clicked" on the deal's timeline once; a link changed after sending redirects nowhere."""

import html as html_lib
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from server import config
from server.actor import SYSTEM
from server.channels import tracking
from server.models import Event, Message, TimelineEntry
from server.services import elements as element_service
from tests.channels.test_send_email import deal_with_client, message_of
from tests.support import add_rule, make_pipeline, wait_until
from tests.support.peers import Received, SmtpPeer

pytestmark = pytest.mark.production_backend

OFFER = "https://shop.acme.example/offer?id=7&lang=de"
HTML = (
    "<html><body><p>Hello {{deal.contact.name}},</p>"
    f'<p><a class="button" href="{html_lib.escape(OFFER)}">see the offer</a> or '
    '<a href="HTTPS://acme.example/terms">our terms</a>.</p>'
    '<p><a href="mailto:sales@acme.example">Write to us</a> <a href="#top">top</a> <a href="/relative">here</a></p>'
    "</body></html>"
)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")
        elif tag == "img":
            self.images.append(dict(attrs))


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


async def sent_offer(smtp: SmtpPeer, *, title: str = "LED retrofit") -> tuple[Message, Received, int]:
    """A deal moved into a stage that sends the offer email: the message, what the SMTP peer got, the deal id."""
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "send_email", {"subject": "Your offer: {{deal.title}}", "html": HTML})
    deal = await deal_with_client(stages["new"], title=title)
    await element_service.move_element("deal", deal.id, stages["offer"].id, actor=SYSTEM)
    message = await message_of(deal, "sent")

    async def arrived() -> list[Received]:
        return smtp.messages()

    [received] = await wait_until(arrived, what="the email at the SMTP peer")
    return message, received, deal.id


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def entries(deal_id: int, like: str) -> list[str]:
    rows = await TimelineEntry.filter(element_type="deal", element_id=deal_id).order_by("id")
    return [r.text for r in rows if like in r.text]


async def element_changes(deal_id: int, change: str) -> list[dict]:
    rows = await Event.filter(kind="element", element_type="deal", element_id=deal_id).order_by("id")
    return [r.payload for r in rows if r.payload.get("change") == change]


async def test_a_sent_email_has_a_pixel_and_its_web_links_rewritten_to_signed_redirects(db, smtp):
    message, received, _ = await sent_offer(smtp)
    sent = links_of(received.body("html"))
    base = f"http://127.0.0.1:8000/t/{message.uid}"  # no public URL set: the server's own address

    [pixel] = sent.images
    assert (pixel["src"], pixel["width"], pixel["height"]) == (f"{base}/open.gif", "1", "1")
    offer, terms, mailto, anchor, relative = sent.hrefs
    assert offer.startswith(f"{base}/click?") and terms.startswith(f"{base}/click?")
    assert parse_qs(urlsplit(offer).query)["u"] == [OFFER]  # the target as the reader's browser would follow it
    assert parse_qs(urlsplit(terms).query)["u"] == ["HTTPS://acme.example/terms"]
    assert (mailto, anchor, relative) == ("mailto:sales@acme.example", "#top", "/relative")
    assert 'class="button"' in received.body("html")  # the rest of the tag as written
    assert "Hello Anna Berg," in received.body("html")
    # The text alternative keeps the links readable, untracked.
    assert f"see the offer ({OFFER})" in received.body("plain") and "/t/" not in received.body("plain")
    # The message keeps the HTML as the rule rendered it.
    assert "/t/" not in (await Message.get(id=message.id)).html


async def test_fetching_the_pixel_twice_records_one_open_on_the_timeline(db, smtp, client):
    message, received, deal_id = await sent_offer(smtp)
    [pixel] = links_of(received.body("html")).images

    answers = [await client.get(path_of(pixel["src"] or "")) for _ in range(2)]

    for answer in answers:
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
        assert answer.content.startswith(b"GIF89a") and "no-store" in answer.headers["cache-control"]
    assert await entries(deal_id, "opened") == ["Email “Your offer: LED retrofit” opened"]
    assert [e["message_id"] for e in await element_changes(deal_id, "email_opened")] == [message.id]
    assert (await Message.get(id=message.id)).opened_at is not None


async def test_the_pixel_of_an_unknown_message_is_a_pixel_too(db, client):
    for uid in ("0" * 32, "not-a-uid"):
        answer = await client.get(f"/t/{uid}/open.gif")
        assert answer.status_code == 200 and answer.content.startswith(b"GIF89a")
    assert await TimelineEntry.all().count() == 0


async def test_clicking_a_link_redirects_to_its_target_and_records_it_once_per_link(db, smtp, client):
    message, received, deal_id = await sent_offer(smtp)
    offer, terms, *_ = links_of(received.body("html")).hrefs

    first = await client.get(path_of(offer))
    again = await client.get(path_of(offer))
    other = await client.get(path_of(terms))

    assert (first.status_code, first.headers["location"]) == (302, OFFER)
    assert (again.status_code, again.headers["location"]) == (302, OFFER)
    assert (other.status_code, other.headers["location"]) == (302, "HTTPS://acme.example/terms")
    assert await entries(deal_id, "Link clicked") == [
        f"Link clicked in “Your offer: LED retrofit”: {OFFER}",
        "Link clicked in “Your offer: LED retrofit”: HTTPS://acme.example/terms",
    ]
    # A click shows the email was opened, even when the reader's client blocked the pixel.
    assert await entries(deal_id, "opened") == ["Email “Your offer: LED retrofit” opened"]
    clicks = await element_changes(deal_id, "link_clicked")
    assert [(c["message_id"], c["url"]) for c in clicks] == [(message.id, OFFER), (message.id, "HTTPS://acme.example/terms")]
    stored = await Message.get(id=message.id)
    assert stored.clicked_at is not None and stored.opened_at is not None


async def test_a_changed_link_answers_400_and_redirects_nowhere(db, smtp, client):
    message, received, deal_id = await sent_offer(smtp)
    offer, *_ = links_of(received.body("html")).hrefs
    query = parse_qs(urlsplit(offer).query)
    uid, sig = message.uid, query["s"][0]
    other_uid = "f" * 32

    tampered = {
        "another target": f"/t/{uid}/click?u=https%3A%2F%2Fevil.example%2F&s={sig}",
        "another signature": f"/t/{uid}/click?u={query['u'][0]}&s={sig[:-2]}AA",
        "no signature": f"/t/{uid}/click?u=https%3A%2F%2Fevil.example%2F",
        "another message": f"/t/{other_uid}/click?u={query['u'][0]}&s={sig}",
        "not a web link": f"/t/{uid}/click?u=javascript%3Aalert(1)&s={sig}",
    }
    for what, path in tampered.items():
        answer = await client.get(path)
        assert answer.status_code == 400, what
        assert "location" not in answer.headers, what
        assert "not valid" in answer.text, what
    assert "signature does not match" in (await client.get(tampered["another target"])).text
    assert "no signature" in (await client.get(tampered["no signature"])).text
    assert await entries(deal_id, "Link clicked") == []
    assert (await Message.get(id=message.id)).clicked_at is None


def test_links_point_at_the_public_url_when_one_is_set(monkeypatch):
    monkeypatch.setenv("PIPEWRIGHT_PUBLIC_URL", "https://crm.example.org/")
    config.reload()
    try:
        html = tracking.tracked_html('<a href="https://acme.example/">x</a>', uid="a" * 32, key=b"k")
    finally:
        monkeypatch.delenv("PIPEWRIGHT_PUBLIC_URL")
        config.reload()
    [href] = re.findall(r'href="([^"]*)"', html)
    assert html_lib.unescape(href).startswith(f"https://crm.example.org/t/{'a' * 32}/click?u=https%3A%2F%2Facme.example%2F&s=")
    assert f'src="https://crm.example.org/t/{"a" * 32}/open.gif"' in html


def test_only_the_href_of_web_links_changes_however_the_tag_is_written():
    uid, key = "b" * 32, b"secret"

    def click(url: str) -> str:
        return html_lib.escape(tracking.click_url(key, uid, url))

    written = {
        '<A HREF=\'http://x.example/\'>': f'<A HREF="{click("http://x.example/")}">',
        '<a title="a > b" href=https://y.example/p?q=1&amp;r=2>': f'<a title="a > b" href="{click("https://y.example/p?q=1&r=2")}">',
        '<area shape=rect href="https://z.example">': f'<area shape=rect href="{click("https://z.example")}">',
        '<a\nhref = "https://n.example"\n>': f'<a\nhref = "{click("https://n.example")}"\n>',
        '<a data-href="https://d.example" href="#x">': '<a data-href="https://d.example" href="#x">',
        '<abbr href="https://no.example">': '<abbr href="https://no.example">',
        '<a href="tel:+4930555">': '<a href="tel:+4930555">',
        '<a href="javascript:alert(1)">': '<a href="javascript:alert(1)">',
        '<a name=top>': '<a name=top>',
    }
    for html, sent in written.items():
        assert tracking.tracked_html(html, uid=uid, key=key).removesuffix(
            f'<img src="{tracking.pixel_url(uid)}" width="1" height="1" alt="" style="border:0;width:1px;height:1px">'
        ) == sent, html
