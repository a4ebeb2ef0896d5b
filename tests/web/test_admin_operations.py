"""The admin's operations page as an admin reads it: the queue in words, the failing rules and the stuck runs, each
linking to the run log filtered by rule and status and to the element; and only for admins.

The app runs in-process on the test's database, so the test moves the clock instead of waiting for runs to age.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from server.actor import SYSTEM
from server.app import create_app
from server.models import User
from server.services import auth
from server.services import elements as element_service
from tests.support import ClockControl, add_rule, make_pipeline, wait_for_runs
from tests.support.admin import PASSWORD, Admin, log_in


@asynccontextmanager
async def logged_in(email: str, *, role: str = "admin") -> AsyncIterator[httpx.AsyncClient]:
    """A user who logged in to the admin with password and TOTP code (made an admin first, then given `role`)."""
    user = await auth.make_admin(email=email, name=email.split("@")[0].title(), password=PASSWORD)
    codes = await auth.activate_without_code(user)
    if role != "admin":
        await User.filter(id=user.id).update(role=role)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=False)),
                                 base_url="http://test") as client:
        answer = await log_in(client, Admin(email, (await User.get(id=user.id)).totp_secret or "", codes))
        assert answer.status_code == 303
        yield client


@pytest.fixture
async def admin_http(db: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in("olga@example.com") as client:
        yield client


def row(html: str, cls: str, attribute: str, value: int) -> str:
    found = re.search(rf'<tr class="{cls}" {attribute}="{value}">(.*?)</tr>', html, re.S)
    assert found, html
    return found.group(1)


async def test_the_operations_page_names_the_failing_rules_and_the_stuck_runs_with_their_links(
        admin_http: httpx.AsyncClient, embedded_worker: Any, clock_control: ClockControl) -> None:
    _, stages = await make_pipeline()
    failing = await add_rule(stages["offer"], "change_company", {"fields": {"email": "accounts@example.com"}},
                             title="Send invoices to accounts")
    failed_deals = [await element_service.create_element("deal", {"title": f"Deal {i}"}, stage_id=stages["offer"].id,
                                                         actor=SYSTEM) for i in range(3)]
    for deal in failed_deals:
        await wait_for_runs("deal", deal.id, 1)
    await add_rule(stages["won"], "add_comment", {"text": "Thanks"}, title="Say thanks")
    await embedded_worker.detach()
    try:
        late = await element_service.create_element("deal", {"title": "Late"}, stage_id=stages["won"].id, actor=SYSTEM)
        clock_control.advance(timedelta(minutes=3))
        page = await admin_http.get("/admin/operations")
    finally:
        await embedded_worker.attach()

    assert page.status_code == 200
    html = page.text
    assert "1 rule run is due and not started;" in html and "1 of them overdue" in html
    assert "The scheduler has stalled" in html and "The workers have stalled" in html
    failing_row = row(html, "failing-rule", "data-rule-id", failing.id)
    assert "Send invoices to accounts" in failing_row and "3 failed runs" in failing_row
    assert f'href="/admin/operations/runs?status=failed&amp;rule_id={failing.id}"' in failing_row
    assert f'href="/admin/deals/{failed_deals[-1].id}"' in failing_row
    assert "has no linked company" in failing_row
    [stuck_id] = re.findall(r'<tr class="stuck-run" data-run-id="(\d+)">', html)
    stuck_row = row(html, "stuck-run", "data-run-id", int(stuck_id))
    assert "Say thanks" in stuck_row and "overdue: due 3 min ago, the scheduler has not claimed it" in stuck_row
    assert f'href="/admin/deals/{late.id}"' in stuck_row

    log = await admin_http.get(f"/admin/operations/runs?status=failed&rule_id={failing.id}")
    assert log.status_code == 200
    assert "3 runs" in log.text
    for deal in failed_deals:
        assert f'href="/admin/deals/{deal.id}"' in log.text
    assert log.text.count('class="run status-failed"') == 3


async def test_the_run_log_refuses_an_unknown_status_by_name(admin_http: httpx.AsyncClient) -> None:
    answer = await admin_http.get("/admin/operations/runs?status=lost")

    assert answer.status_code == 422
    assert "unknown status &#39;lost&#39;" in answer.text


async def test_the_operations_page_is_for_admins_only(admin_http: httpx.AsyncClient) -> None:
    assert 'href="/admin/operations"' in (await admin_http.get("/admin/pipelines")).text
    async with logged_in("mara@example.com", role="manager") as manager:
        page = await manager.get("/admin/operations")
        log = await manager.get("/admin/operations/runs")
        home = await manager.get("/admin/deals")

    assert (page.status_code, log.status_code) == (403, 403)
    assert 'href="/admin/operations"' not in home.text


async def test_a_run_count_past_the_cap_reads_over_it_and_the_page_says_counts_stop_there(
        admin_http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.services import operations

    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {"text": "later"}, timing={"kind": "after", "amount": 1, "unit": "days"})
    for i in range(5):
        await element_service.create_element("deal", {"title": f"Later {i}"}, stage_id=stages["offer"].id, actor=SYSTEM)
    exact = (await admin_http.get("/admin/operations")).text
    monkeypatch.setattr(operations, "COUNTED_UP_TO", 3)
    capped = (await admin_http.get("/admin/operations")).text

    assert "5 scheduled" in exact and "Run counts stop at" not in exact
    assert "over 3 scheduled" in capped and "0 running" in capped
    assert "Run counts stop at 3: counting every run of a longer queue would slow this page" in capped
