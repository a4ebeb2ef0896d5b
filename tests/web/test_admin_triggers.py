"""A stage's triggers in the admin over plain HTTP, against `pipewright serve` with the demo data: the board lists
them in words, the trigger form (from the type's settings model) adds and edits one with inline errors, delete
asks first, a webhook trigger's secret URL shows and is replaced, and a deal's page says what a trigger did."""

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from markupsafe import escape

from tests.support.admin import Server, csrf_of, log_in


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30)


def rows(server: Server, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.db_path) as connection:
        return connection.execute(sql, args).fetchall()


def stage_id(server: Server, pipeline: str, stage: str) -> int:
    [(found,)] = rows(server, "SELECT s.id FROM stage s JOIN pipeline p ON p.id = s.pipeline_id "
                              "WHERE p.name = ? AND s.name = ?", pipeline, stage)
    return int(found)


def pipeline_id(server: Server, name: str) -> int:
    [(found,)] = rows(server, "SELECT id FROM pipeline WHERE name = ?", name)
    return int(found)


@asynccontextmanager
async def logged_in(server: Server, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client(server) as http:
        assert (await log_in(http, server.create_admin(email))).status_code == 303
        yield http


async def test_a_field_changed_trigger_is_added_edited_and_deleted_through_its_form(server: Server) -> None:
    lost, sales = stage_id(server, "Sales", "Lost"), pipeline_id(server, "Sales")
    async with logged_in(server, "triggers-form@example.com") as http:
        board = await http.get(f"/admin/pipelines/{sales}")
        assert f'href="/admin/stages/{lost}/triggers/new"' in board.text
        catalogue = await http.get(f"/admin/stages/{lost}/triggers/new")
        assert catalogue.status_code == 200 and "Changes to the element" in catalogue.text
        assert f'href="/admin/stages/{lost}/triggers/new?type=field_changed">Field changed</a>' in catalogue.text
        url = f"/admin/stages/{lost}/triggers/new?type=field_changed"
        form_page = await http.get(url)
        assert 'name="s.fields"' in form_page.text and "event.old" in form_page.text  # from the settings model
        token = csrf_of(form_page.text)
        good = {"name": "Discount too big", "s.fields": "amount", "c.0.0.field": "amount", "c.0.0.op": "lt",
                "c.0.0.value": "100", "enabled": "on"}

        refused = await http.post(url, data=good)
        assert refused.status_code == 403
        assert rows(server, "SELECT id FROM `trigger` WHERE name = 'Discount too big'") == []

        invalid = await http.post(url, data={**good, "name": "", "s.fields": "amount, colour",
                                             "c.0.0.field": "event.nope", "csrf_token": token})
        assert invalid.status_code == 422
        assert "The trigger was not saved" in invalid.text
        assert '<a href="#f-name">Name</a>: give the trigger a name' in invalid.text
        assert "deals have no field &#39;colour&#39;" in invalid.text and 'id="err-settings-fields"' in invalid.text
        assert '<a href="#f-settings-fields">Field changed: Fields (item 2)</a>' in invalid.text
        assert 'id="err-condition-0-0-field"' in invalid.text and 'value="amount, colour"' in invalid.text
        assert rows(server, "SELECT id FROM `trigger` WHERE stage_id = ?", lost) == []

        created = await http.post(url, data={**good, "csrf_token": token})
        assert created.status_code == 303
        [(trigger_id, settings, allow_back)] = rows(server, "SELECT id, settings, allow_back FROM `trigger` "
                                                            "WHERE stage_id = ?", lost)
        assert created.headers["location"] == f"/admin/pipelines/{sales}#trigger-{trigger_id}"
        assert (settings, allow_back) == ('{"fields":["amount"]}', 0)
        board = await http.get(f"/admin/pipelines/{sales}")
        assert str(escape("When amount changes and amount is less than €100.00: move here")) + "</p>" in board.text

        edit = await http.get(f"/admin/triggers/{trigger_id}/edit")
        assert 'value="Discount too big"' in edit.text and 'value="amount"' in edit.text
        saved = await http.post(f"/admin/triggers/{trigger_id}/edit",
                                data={**good, "allow_back": "on", "csrf_token": csrf_of(edit.text)})
        assert saved.status_code == 303
        board = await http.get(f"/admin/pipelines/{sales}")
        assert escape("When amount changes and amount is less than €100.00: move here, also backwards") in board.text

        confirm = await http.get(f"/admin/triggers/{trigger_id}/delete")
        assert "Delete the trigger “Discount too big”?" in confirm.text
        assert '<button type="submit" class="danger">Delete trigger</button>' in confirm.text
        assert (await http.post(f"/admin/triggers/{trigger_id}/delete")).status_code == 403
        assert rows(server, "SELECT id FROM `trigger` WHERE id = ?", trigger_id) != []
        deleted = await http.post(f"/admin/triggers/{trigger_id}/delete", data={"csrf_token": csrf_of(confirm.text)})
        assert deleted.headers["location"] == f"/admin/pipelines/{sales}#stage-{lost}"
        assert rows(server, "SELECT id FROM `trigger` WHERE id = ?", trigger_id) == []
        assert "Discount too big" not in (await http.get(f"/admin/pipelines/{sales}")).text


async def test_the_board_lists_the_demo_triggers_in_words(server: Server) -> None:
    async with logged_in(server, "triggers-board@example.com") as http:
        board = await http.get(f"/admin/pipelines/{pipeline_id(server, 'Sales')}")
        assert escape("When a payment of at least 1000 is received: move here") in board.text
        assert escape("When an email comes in: move here, also backwards") in board.text
        leads = await http.get(f"/admin/pipelines/{pipeline_id(server, 'Leads')}")
        assert escape("When the web form “contact-us” is submitted: move here") in leads.text


def webhook_token(server: Server) -> tuple[int, str]:
    [(trigger_id, token)] = rows(server, "SELECT id, token FROM `trigger` WHERE name = 'Paid in the shop'")
    return int(trigger_id), str(token)


async def test_the_webhook_trigger_shows_its_url_and_a_new_one_replaces_it(server: Server) -> None:
    trigger_id, token = webhook_token(server)
    async with logged_in(server, "triggers-hook@example.com") as http:
        board = await http.get(f"/admin/pipelines/{pipeline_id(server, 'Sales')}")
        assert f'value="{server.url}/hooks/triggers/{token}" readonly' in board.text
        assert f'data-copy="hook-{trigger_id}"' in board.text
        confirm = await http.get(f"/admin/triggers/{trigger_id}/rotate")
        assert "The current URL stops working at once" in confirm.text
        assert '<button type="submit" class="danger">Replace the URL</button>' in confirm.text
        assert (await http.post(f"/admin/triggers/{trigger_id}/rotate")).status_code == 403
        assert webhook_token(server)[1] == token

        rotated = await http.post(f"/admin/triggers/{trigger_id}/rotate", data={"csrf_token": csrf_of(confirm.text)})
        assert rotated.headers["location"] == f"/admin/triggers/{trigger_id}/edit#webhook-url"
        new_token = webhook_token(server)[1]
        assert new_token != token
        edit = await http.get(f"/admin/triggers/{trigger_id}/edit")
        assert f'value="{server.url}/hooks/triggers/{new_token}" readonly' in edit.text
        deal = {"element_type": "deal", "element_id": 1, "status": "pending"}
        assert (await http.post(f"/hooks/triggers/{token}", json=deal)).status_code == 404
        assert (await http.post(f"/hooks/triggers/{new_token}", json=deal)).status_code != 404


async def test_the_deal_page_says_which_trigger_moved_it_and_why_another_call_did_not(server: Server) -> None:
    [(deal_id,)] = rows(server, "SELECT id FROM deal WHERE title = 'Bergmann: maintenance contract'")
    _, token = webhook_token(server)
    async with logged_in(server, "triggers-deal@example.com") as http:
        waiting = await http.post(f"/hooks/triggers/{token}",
                                  json={"element_type": "deal", "element_id": deal_id, "status": "pending"})
        assert waiting.json()["outcome"] == "no_match"
        paid = await http.post(f"/hooks/triggers/{token}",
                               json={"element_type": "deal", "element_id": deal_id, "status": "paid"})
        assert paid.json()["outcome"] == "moved"

        page = await http.get(f"/admin/deals/{deal_id}")
        assert page.status_code == 200 and 'id="triggers"' in page.text
        assert escape("“Paid in the shop” moved it from “In progress” to “Won”.") in page.text
        assert escape("“Paid in the shop” (on “Won”) matched.") in page.text
        assert escape("No trigger matched: it stayed in “In progress”.") in page.text
        assert escape("“Paid in the shop” (on “Won”) did not match: ") in page.text
        # the newest first
        assert page.text.index(escape("moved it from")) < page.text.index(escape("No trigger matched"))
