"""The admin in the viewer's language and time zone: the catalogue is complete, a German user reads German and
Berlin time, an English one English and UTC; the formatting filters themselves."""

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from babel.messages.catalog import Catalog

from server import i18n
from tests.support.admin import Admin, Server, csrf_of, log_in
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


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)


async def _save_user(http: httpx.AsyncClient, user_id: int, **changes: str) -> httpx.Response:
    page = await http.get(f"/admin/users/{user_id}")
    value = {name: re.search(rf'id="u-{name}"[^>]*value="([^"]*)"', page.text) for name in ("email", "name")}
    form = {"email": value["email"].group(1), "name": value["name"].group(1), "role": "admin", "active": "on",
            "timezone": "UTC", "locale": "", "csrf_token": csrf_of(page.text), **changes}
    return await http.post(f"/admin/users/{user_id}", data=form)


def _user_id(server: Server, email: str) -> int:
    with sqlite3.connect(server.db_path) as db:
        return int(db.execute("SELECT id FROM user WHERE email = ?", (email,)).fetchone()[0])


def _token_made_at(server: Server, name: str, moment: datetime) -> None:
    with sqlite3.connect(server.db_path) as db:
        db.execute("UPDATE api_token SET created_at = ? WHERE name = ?", (moment.isoformat(sep=" "), name))


async def _new_token(http: httpx.AsyncClient, server: Server, name: str, user_id: int, moment: datetime) -> None:
    page = await http.get("/admin/tokens")
    made = await http.post("/admin/tokens", data={"name": name, "user_id": str(user_id),
                                                  "csrf_token": csrf_of(page.text)})
    assert made.status_code == 200, made.text
    _token_made_at(server, name, moment)


async def test_a_berlin_admin_in_german_sees_german_pages_and_berlin_times(server: Server) -> None:
    admin: Admin = server.create_admin("greta@pipewright.example", "Greta Berlin")
    user_id = _user_id(server, admin.email)
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        english = await http.get("/admin/users")
        assert '<html lang="en">' in english.text and "<h1>Users</h1>" in english.text

        saved = await _save_user(http, user_id, locale="de", timezone="Europe/Berlin")
        assert saved.status_code == 303, saved.text
        await _new_token(http, server, "winter-sync", user_id, WINTER_MEETING)
        await _new_token(http, server, "summer-sync", user_id, SUMMER_MEETING)

        users = await http.get("/admin/users")
        assert '<html lang="de">' in users.text
        assert "<h1>Benutzer</h1>" in users.text and "Neuer Benutzer" in users.text and "Arbeitstage" in users.text
        tokens = (await http.get("/admin/tokens")).text
        assert "<h1>API-Tokens</h1>" in tokens
        assert "13.01.2026, 10:00 CET" in tokens and "13.07.2026, 11:00 CEST" in tokens
        assert "09:00 UTC" not in tokens

        refused = await http.post("/admin/tokens", data={"name": "no-csrf", "user_id": str(user_id)})
        assert refused.status_code == 403 and "kein gültiges CSRF-Token" in refused.text


async def test_a_user_without_a_language_reads_english_and_utc(server: Server) -> None:
    admin: Admin = server.create_admin("uma@pipewright.example", "Uma Utc")
    user_id = _user_id(server, admin.email)
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        await _new_token(http, server, "utc-sync", user_id, WINTER_MEETING)
        tokens = (await http.get("/admin/tokens")).text
        assert "<h1>API tokens</h1>" in tokens and "Jan 13, 2026, 09:00 UTC" in tokens


async def test_a_language_the_admin_does_not_speak_is_refused_beside_the_field(server: Server) -> None:
    admin: Admin = server.create_admin("fran@pipewright.example", "Fran Français")
    async with client(server) as http:
        assert (await log_in(http, admin)).status_code == 303
        refused = await _save_user(http, _user_id(server, admin.email), locale="fr")
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
