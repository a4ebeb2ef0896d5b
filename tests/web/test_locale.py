"""The admin in the viewer's language and time zone: the catalogue is complete, a German user reads German and
Berlin time, an English one English and UTC; the formatting filters themselves."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from babel.messages.catalog import Catalog

from server import config, i18n
from server.app import create_app
from server.models import ApiToken, User
from server.services import auth
from server.services.access import SYSTEM
from server.services.tokens import create_token
from tests.support import make_user
from tests.support.admin import csrf_of
from web import locale

WINTER_MEETING = datetime(2026, 1, 13, 9, 0, tzinfo=UTC)
SUMMER_MEETING = datetime(2026, 7, 13, 9, 0, tzinfo=UTC)


# ---------------------------------------------------------------- the catalogue


def test_every_text_of_the_admin_has_a_german_translation() -> None:
    missing = locale.untranslated()
    assert not missing, ("texts without a German translation (run `python -m web.locale update`, then translate "
                         "them in web/locale/de/LC_MESSAGES/messages.po):\n" + "\n".join(map(str, missing)))


def test_the_check_names_a_new_untranslated_text_and_where_it_is() -> None:
    template = Catalog()
    template.add("Save", locations=[("web/templates/user.html", 19)])
    template.add("A brand-new sentence nobody translated", locations=[("web/templates/new.html", 3)])
    missing = locale.untranslated(template)
    assert [str(m) for m in missing] == [
        "de: 'A brand-new sentence nobody translated' (web/templates/new.html:3)"]


def test_the_extraction_sees_templates_views_and_condition_words() -> None:
    files = {name for message in locale.extract() if message.id for name, _ in message.locations}
    assert {"web/templates/users.html", "web/guard.py", "server/rules/conditions.py", "web/people.py"} <= files


def test_the_german_catalogue_translates_with_its_placeholders() -> None:
    i18n.install(locale.load())
    with i18n.viewing("de", "UTC"):
        assert i18n.gettext("Users") == "Benutzer"
        assert i18n.gettext("entered %(when)s") % {"when": "x"} == "betreten x"
    assert i18n.gettext("Users") == "Users"  # outside the block: the default, English


# ---------------------------------------------------------------- the filters


@pytest.mark.parametrize(("zone", "language", "moment", "shown"), [
    ("Europe/Berlin", "de", WINTER_MEETING, "13.01.2026, 10:00 CET"),
    ("Europe/Berlin", "de", SUMMER_MEETING, "13.07.2026, 11:00 CEST"),
    ("Europe/Berlin", "en", WINTER_MEETING, "Jan 13, 2026, 10:00 CET"),
    ("UTC", "en", WINTER_MEETING, "Jan 13, 2026, 09:00 UTC"),
    ("America/New_York", "en", SUMMER_MEETING, "Jul 13, 2026, 05:00 EDT"),
])
def test_a_moment_shows_in_the_viewers_zone_with_the_zone_named(zone: str, language: str, moment: datetime,
                                                                 shown: str) -> None:
    with i18n.viewing(language, zone):
        assert i18n.when(moment) == shown
        assert i18n.when(moment.isoformat()) == shown  # as run outputs store it


def test_a_naive_moment_is_utc_and_nothing_is_a_dash() -> None:
    with i18n.viewing("de", "Europe/Berlin"):
        assert i18n.when(datetime(2026, 1, 13, 9, 0)) == "13.01.2026, 10:00 CET"
        assert i18n.when(None) == "—"


@pytest.mark.parametrize(("language", "amount", "currency", "shown"), [
    ("en", "2800", "EUR", "€2,800.00"),
    ("de", "2800", "EUR", "2.800,00\xa0€"),
    ("de", "1234.5", "USD", "1.234,50\xa0$"),
    ("en", None, "EUR", "—"),
    ("de", "", "EUR", "—"),
])
def test_money_shows_with_its_currency_and_no_amount_as_a_dash(language: str, amount: Any, currency: str,
                                                               shown: str) -> None:
    with i18n.viewing(language, "UTC"):
        assert i18n.money(amount, currency) == shown


def test_numbers_dates_and_durations_in_the_viewers_way() -> None:
    with i18n.viewing("de", "UTC"):
        assert i18n.number("1234.5") == "1.234,5"
        assert i18n.format_date("2026-03-01") == "01.03.2026"
        assert i18n.duration(timedelta(days=10, hours=2)) == "10 Tage und 2 Stunden"
    with i18n.viewing("en", "UTC"):
        assert i18n.duration(90 * 60) == "1 hour and 30 minutes"
        assert i18n.format_date("2026-03-01") == "Mar 1, 2026"


def test_an_unknown_language_or_zone_falls_back() -> None:
    assert i18n.supported("de-DE") == "de" and i18n.supported("fr") is None
    with i18n.viewing("fr", "Mars/Olympus"):
        assert i18n.when(WINTER_MEETING) == "Jan 13, 2026, 09:00 UTC"


# ---------------------------------------------------------------- the admin over HTTP


async def browser_of(user: User) -> httpx.AsyncClient:
    session = await auth.create_session(user, stage=auth.STAGE_FULL)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=False)),
                             base_url="http://crm.test", cookies={"pw_session": session})


async def _save_user(http: httpx.AsyncClient, user: User, **changes: str) -> httpx.Response:
    page = await http.get(f"/admin/users/{user.id}")
    form = {"email": user.email, "name": user.name, "role": "admin", "active": "on", "timezone": "UTC",
            "locale": "", "csrf_token": csrf_of(page.text), **changes}
    return await http.post(f"/admin/users/{user.id}", data=form)


async def _token_made_at(user: User, name: str, moment: datetime) -> None:
    await create_token(SYSTEM, user_id=user.id, name=name)
    await ApiToken.filter(name=name).update(created_at=moment)


async def test_a_berlin_admin_in_german_sees_german_pages_and_berlin_times(db: Any) -> None:
    greta = await make_user("Greta", role="admin")
    await _token_made_at(greta, "winter-sync", WINTER_MEETING)
    await _token_made_at(greta, "summer-sync", SUMMER_MEETING)
    async with await browser_of(greta) as http:
        english = await http.get("/admin/users")
        assert '<html lang="en">' in english.text and "<h1>Users</h1>" in english.text

        saved = await _save_user(http, greta, locale="de", timezone="Europe/Berlin")
        assert saved.status_code == 303, saved.text
        users = await http.get("/admin/users")
        assert '<html lang="de">' in users.text
        assert "<h1>Benutzer</h1>" in users.text and "Neuer Benutzer" in users.text and "Arbeitstage" in users.text
        assert ">Benutzer</a>" in users.text and ">Meine Arbeit</a>" in users.text  # the navigation too
        assert ">Pipelines & Regeln</a>" in users.text and ">Abmelden</button>" in users.text
        tokens = (await http.get("/admin/tokens")).text
        assert "<h1>API-Tokens</h1>" in tokens
        assert "13.01.2026, 10:00 CET" in tokens and "13.07.2026, 11:00 CEST" in tokens
        assert "09:00 UTC" not in tokens

        refused = await http.post("/admin/tokens", data={"name": "no-csrf", "user_id": str(greta.id)})
        assert refused.status_code == 403 and "kein gültiges CSRF-Token" in refused.text


async def test_a_user_without_a_language_reads_english_and_utc(db: Any) -> None:
    uma = await make_user("Uma", role="admin")
    await _token_made_at(uma, "utc-sync", WINTER_MEETING)
    async with await browser_of(uma) as http:
        tokens = (await http.get("/admin/tokens")).text
    assert "<h1>API tokens</h1>" in tokens and "Jan 13, 2026, 09:00 UTC" in tokens


async def test_the_instance_default_language_is_used_before_login_and_for_users_without_one(
        db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_settings", config.Settings(default_locale="de"))
    ulla = await make_user("Ulla", role="admin")
    async with await browser_of(ulla) as http:
        assert "<h1>Benutzer</h1>" in (await http.get("/admin/users")).text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=False)),
                                 base_url="http://crm.test") as anonymous:
        setup = await anonymous.get("/admin/setup")  # no admin can log in yet: the setup page is open
    assert '<html lang="de">' in setup.text and "<h1>Den ersten Admin einrichten</h1>" in setup.text


async def test_a_language_the_admin_does_not_speak_is_refused_beside_the_field(db: Any) -> None:
    fran = await make_user("Fran", role="admin")
    async with await browser_of(fran) as http:
        refused = await _save_user(http, fran, locale="fr")
    assert refused.status_code == 422
    assert "&#39;fr&#39; is not a language of the admin: one of en, de" in refused.text
    assert 'id="u-locale" name="locale" aria-invalid="true"' in refused.text


# ---------------------------------------------------------------- the API


async def test_the_api_reads_and_sets_a_users_language(admin_client: httpx.AsyncClient) -> None:
    async def graphql(query: str) -> dict[str, Any]:
        body = (await admin_client.post("/graphql", json={"query": query})).json()
        assert "errors" not in body, body
        return dict(body["data"])

    made = (await graphql('mutation { createUser(input: {email: "lina@example.com", name: "Lina", locale: "de"}) '
                          '{ ... on User { id locale } } }'))["createUser"]
    assert made["locale"] == "de"
    cleared = await graphql(f'mutation {{ updateUser(id: "{made["id"]}", input: {{locale: ""}}) '
                            '{ ... on User { locale } } }')
    assert cleared["updateUser"] == {"locale": None}  # back to the instance's default
    refused = await graphql(f'mutation {{ updateUser(id: "{made["id"]}", input: {{locale: "fr"}}) '
                            '{ ... on ValidationError { errors { field message } } } }')
    assert refused["updateUser"]["errors"] == [
        {"field": "locale", "message": "'fr' is not a language of the admin: one of en, de"}]
