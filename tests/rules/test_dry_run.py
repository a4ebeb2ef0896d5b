"""Dry run: what entering a stage now would do, rule by rule, in words, and safe by construction.

The proof counts what a real effect would need: every statement this process sends to the database (no INSERT,
UPDATE or DELETE, no transaction), the outbox (no message row), and every socket this process connects (the
audit hook on "socket.connect"; the database's own port aside, which reads use on PostgreSQL).
"""

import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from server.actor import SYSTEM
from server.models import Company, Contact, Message, Pipeline, RuleRun, Stage
from server.rules import dry_run as dry
from server.rules.actions import registry
from server.rules.actions.params import example_params
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, make_user
from tests.support.clients import work
from tests.support.statements import traced

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|BEGIN|COMMIT|SAVEPOINT|MERGE|COPY|TRUNCATE|ALTER|CREATE|DROP)\b",
                   re.IGNORECASE)

_connects: list[Any] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _connects is not None:
        _connects.append(args[1])


sys.addaudithook(_audit)  # an audit hook cannot be removed: it records only while a test holds `_connects`


class Seen:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.connects: list[Any] = []

    def saw(self, sql: str) -> None:
        self.statements.append(" ".join(sql.split()))

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if WRITE.match(s)]


@asynccontextmanager
async def watched(kind: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Seen]:
    """Every statement and every socket connection of this process while the block runs."""
    global _connects
    seen = Seen()
    _connects = seen.connects
    try:
        async with traced(kind, monkeypatch, seen.saw):
            yield seen
    finally:
        _connects = None


async def world() -> tuple[dict[str, Pipeline], dict[str, dict[str, Stage]]]:
    boss = await make_user("Boss", role="manager")
    await make_user("Admin", role="admin")
    await make_user("Maria Becker", role="employee", supervisor_id=boss.id)
    deals, deal_stages = await make_pipeline("deal", "Sales")
    leads, lead_stages = await make_pipeline("lead", "Leads")
    return {"deal": deals, "lead": leads}, {"deal": deal_stages, "lead": lead_stages}


async def every_action_stage(pipelines: dict[str, Pipeline]) -> dict[str, Stage]:
    """A stage per element type holding the example rule of each action of that type: every action, once."""
    stages = {kind: await Stage.create(pipeline_id=p.id, code="everything", name="Everything", position=9)
              for kind, p in pipelines.items()}
    for key, action in sorted(registry().items()):
        kind = action.example.entity_type
        params = await example_params(action, pipeline_id=pipelines[kind].id)
        await add_rule(stages[kind], key, params, title=action.example.title)
    return stages


async def acme_deal(stage: Stage, responsible: int) -> int:
    company = await Company.create(name="Acme", emails=work("office@acme.example"))
    contact = await Contact.create(name="Anna", emails=work("anna@acme.example"),
                                   phones=[{"value": "+491705550123", "type": "mobile"}], company_id=company.id)
    deal = await element_service.create_element(
        "deal", {"title": "Acme roof", "responsible": responsible, "company": company.id, "close_date": "2031-05-01",
                 "amount": 1200}, stage_id=stage.id, contact_ids=[contact.id], actor=SYSTEM)
    return deal.id


@pytest.mark.production_backend
async def test_a_dry_run_of_every_action_describes_each_rule_and_writes_sends_and_connects_nothing(
        db, worker_paused, monkeypatch):
    pipelines, stages = await world()
    everything = await every_action_stage(pipelines)
    maria = (await make_user("Carl", role="employee")).id
    deal_id = await acme_deal(stages["deal"]["new"], maria)
    lead = await element_service.create_element("lead", {"title": "Web form: Ida", "responsible": maria},
                                                stage_id=stages["lead"]["new"].id, actor=SYSTEM)
    runs_before, messages_before = await RuleRun.all().count(), await Message.all().count()
    database_port = urlsplit(db.database_url or "").port

    async with watched(db.kind, monkeypatch) as seen:
        deal_run = await dry.dry_run("deal", deal_id, everything["deal"].id)
        lead_run = await dry.dry_run("lead", lead.id, everything["lead"].id)

    previews = deal_run.rules + lead_run.rules
    assert sorted(p.action_type for p in previews) == sorted(registry())
    assert seen.statements, "the dry run read nothing: the trace saw no statement"
    assert seen.writes == []
    assert [a for a in seen.connects if not (isinstance(a, tuple) and a[1:2] == (database_port,))] == []
    assert (await RuleRun.all().count(), await Message.all().count()) == (runs_before, messages_before)
    for preview in previews:
        assert preview.problem is None, (preview.action_type, preview.problem)
        assert preview.effect.strip() and preview.sentence.startswith(f"“{preview.title}”"), preview
    effects = {p.action_type: p.effect for p in previews}
    assert "to anna@acme.example" in effects["send_email"]
    assert "Your offer: Acme roof" in effects["send_email"]  # the subject rendered with the deal
    assert "+491705550123" in effects["send_sms"]
    assert "“Won”" in effects["change_stage"]
    assert "Boss" in effects["change_responsible"]


async def test_a_task_rule_names_the_assignee_and_its_due_time_in_working_hours(db, worker_paused):
    pipelines, stages = await world()
    maria = await make_user("Maria", role="employee")
    maria.name = "Maria Becker"
    await maria.save()
    stage = stages["deal"]["offer"]
    await add_rule(stage, "task", {"title": "Call {{deal.company.name}}", "deadline_days": 1,
                                   "responsible": maria.id}, title="Call the client",
                   timing={"kind": "after", "amount": 1, "unit": "hours", "working_time": "company"})
    deal_id = await acme_deal(stages["deal"]["new"], maria.id)
    friday_evening = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)  # working time (09:00-18:00 UTC) ends at 18:00

    [preview] = (await dry.dry_run("deal", deal_id, stage.id, at=friday_evening)).rules

    assert preview.due_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert preview.sentence == ("“Call the client” would run Mon 7 Dec 2026 09:00 UTC: Creates the task “Call Acme” "
                                "for Maria Becker, due Sat 5 Dec 2026 17:30 UTC.")
    assert preview.params["title"] == "Call Acme"


async def test_a_failing_condition_shows_the_values_it_saw(db, worker_paused):
    _, stages = await world()
    stage = stages["deal"]["offer"]
    await add_rule(stage, "add_comment", {"text": "Big one"}, title="Flag big deals",
                   condition=[[{"field": "deal.amount", "op": "gt", "value": 5000}]])
    deal_id = await acme_deal(stages["deal"]["new"], (await make_user("Carl")).id)

    [preview] = (await dry.dry_run("deal", deal_id, stage.id)).rules

    assert preview.condition_met is False
    assert "(deal.amount is 1,200)" in preview.condition and "more than 5,000" in preview.condition
    assert preview.sentence.startswith("“Flag big deals” would be skipped, condition not met:")
    assert not preview.would_act


async def test_a_template_the_element_cannot_fill_is_the_problem_the_run_would_fail_with(db, worker_paused):
    _, stages = await world()
    stage = stages["deal"]["offer"]
    await add_rule(stage, "send_email", {"subject": "Hi", "text": "x", "client": "company", "to_type": "home"},
                   title="Mail home")
    deal_id = await acme_deal(stages["deal"]["new"], (await make_user("Carl")).id)

    [preview] = (await dry.dry_run("deal", deal_id, stage.id)).rules

    assert preview.problem == "the deal has no company with a home email address"
    assert "would fail" in preview.sentence
