"""The contract every action keeps, walked over the registry: adding an action is adding one module.

Each action declares a known group, events from the known set, an execute and a describe of its
own, and an example rule. The example is saved through the rules service (so its params validate),
described, and run through the engine on a fresh element; the outputs the run ends with are the
ones the action declares (a blocking action is released first: by the events it declares, else by
the engine's release).
"""

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.actor import SYSTEM
from server.app import create_app
from server.db import transaction
from server.errors import ValidationFailed
from server.models import Company, Contact, Pipeline, Rule, RuleRun, Stage
from server.rules import actions, engine
from server.rules.actions import registry
from server.rules.actions.base import CUSTOMER_ACTIVITY, GROUPS, RELEASE_EVENTS, Action, Names, load_names
from server.rules.actions.params import describe_params, example_params
from server.rules.engine import FINISHED
from server.services import auth
from server.services import elements as element_service
from server.services.demo import load_demo_if_empty
from tests.support import add_rule, make_pipeline, make_token, make_user, wait_for_runs, wait_until
from tests.support.clients import work

# How each event that ends a wait happens for real: a new event needs its way in here.
RELEASES: dict[str, Callable[[str, int], Awaitable[Any]]] = {
    CUSTOMER_ACTIVITY: lambda element_type, element_id: element_service.record_customer_activity(
        element_type, element_id, kind="email", text="Thanks, that works for us", actor=SYSTEM),
}


def test_every_release_event_has_a_way_to_happen_here():
    assert set(RELEASES) == set(RELEASE_EVENTS)


def mentioned(action: Action, params: dict[str, Any], names: Names) -> list[str]:
    """What of the example a description could name: texts, numbers, and the names of people, stages, pipelines."""
    found: list[str] = []
    for spec in describe_params(action.Params):
        value = params.get(spec.name)
        if value is None or isinstance(value, bool):
            continue
        if spec.kind == "user":
            found.append(names.users[value])
        elif spec.kind == "users":
            found += [names.users[v] for v in value]
        elif spec.kind == "stage":
            found.append(names.stages[value])
        elif spec.kind == "pipeline":
            found.append(names.pipelines[value])
        elif isinstance(value, dict):
            found += [str(k) for k in value] + [str(v)[:40] for v in value.values()]
        elif isinstance(value, list):
            found += [str(v) for v in value]
        elif str(value).strip():
            found.append(str(value)[:40])
    return found


async def world() -> dict[str, Pipeline]:
    """Users of every role (the responsible has a supervisor), a deal and a lead pipeline, a company, a contact."""
    boss = await make_user("Boss", role="manager")
    await make_user("Admin", role="admin")
    await make_user("Owner", role="employee", supervisor_id=boss.id)
    deals, _ = await make_pipeline("deal", "Sales")
    leads, _ = await make_pipeline("lead", "Leads")
    return {"deal": deals, "lead": leads}


async def new_element(entity_type: str, stage: Stage) -> tuple[str, int]:
    owner = await make_user("Carl", role="employee", supervisor_id=(await make_user("Dora", role="manager")).id)
    if entity_type == "lead":
        lead = await element_service.create_element("lead", {"title": "Web form: Ida", "responsible": owner.id},
                                                    stage_id=stage.id, actor=SYSTEM)
        return "lead", lead.id
    company = await Company.create(name="Acme", emails=work("office@acme.example"))
    contact = await Contact.create(name="Carla", emails=work("carla@acme.example"),
                                   phones=[{"value": "+491705550123", "type": "mobile"}], company_id=company.id)
    deal = await element_service.create_element("deal", {"title": "Acme roof", "responsible": owner.id,
                                                         "company": company.id, "close_date": "2031-05-01"},
                                                stage_id=stage.id, contact_ids=[contact.id], actor=SYSTEM)
    return "deal", deal.id


async def keeps_the_contract(action: Action) -> None:
    assert action.key and action.title, action
    assert action.group in GROUPS, f"{action.key}: group {action.group!r} is not one of {', '.join(GROUPS)}"
    assert set(action.released_by) <= set(RELEASE_EVENTS), action.released_by
    assert type(action).execute is not Action.execute, f"{action.key} has no execute"
    assert type(action).describe is not Action.describe, f"{action.key} does not describe what it does"
    assert getattr(action, "example", None) is not None, f"{action.key} has no example (its demo use)"
    example = action.example

    pipelines = await world()
    pipeline = pipelines[example.entity_type]
    stage = await Stage.create(pipeline_id=pipeline.id, code="contract", name="Contract", position=9)
    params = await example_params(action, pipeline_id=pipeline.id)
    await add_rule(stage, action.key, params, title=example.title)  # validated as any rule is, or refused

    names = await load_names()
    description = action.describe(action.Params.model_validate(params), names)
    assert description.strip() and description != action.title, f"{action.key} describes itself as {description!r}"
    wanted = mentioned(action, params, names)
    assert not wanted or any(w in description for w in wanted), f"{description!r} names none of {wanted}"

    element_type, element_id = await new_element(example.entity_type, stage)
    [run] = await wait_for_runs(element_type, element_id, 1, statuses=(*FINISHED, "waiting"))
    if action.released_by:
        assert run.status == "waiting", f"{action.key} says {action.released_by} end its wait, but it does not wait"
    if run.status == "waiting":
        if action.released_by:
            for event in action.released_by:
                await RELEASES[event](element_type, element_id)
        else:
            async with transaction():
                assert await engine.release_waiting(run, ended_by="the contract test")
        [run] = await wait_for_runs(element_type, element_id, 1)
    assert run.status == "succeeded", (run.status, run.error, run.reason)
    assert sorted(run.outputs) == sorted(action.outputs), f"{action.key} declares {action.outputs}, gave {run.outputs}"


@pytest.mark.production_backend
@pytest.mark.parametrize("key", sorted(registry()))
async def test_every_action_keeps_the_contract(db, key: str):
    await keeps_the_contract(registry()[key])


# ---------------------------------------------------------------- acceptance: a new action is one file

STAMP = '''"""Stamp: a sample action that exists only in a test, to show that an action is one module."""

from typing import Any, Literal

from pydantic import Field

from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, Template


class StampParams(Params):
    text: Template = Field(min_length=1, max_length=200)
    ink: Literal["red", "blue"] = "red"


class Stamp(Action):
    key = "stamp"
    title = "Stamp"
    summary = "Stamps the element with a coloured word."
    gives = "the stamp as printed"
    group = "documents"
    Params = StampParams
    outputs = ("stamp",)
    example = Example("Stamp it approved", {"text": "Approved: {{deal.title}}", "ink": "blue"})

    async def execute(self, ctx: Any, params: StampParams) -> Done:
        return Done({"stamp": f"[{params.ink}] {params.text}"})

    def describe(self, params: StampParams, names: Names = NO_NAMES) -> str:
        return f"Stamps “{params.text}” in {params.ink}"


ACTION = Stamp()
'''


@pytest.fixture
def stamp(tmp_path: Path) -> Any:
    """The module file `stamp.py` on the actions package's path, found the way every action is."""
    (tmp_path / "stamp.py").write_text(STAMP)
    actions.__path__.append(str(tmp_path))
    registry.cache_clear()
    try:
        yield registry()["stamp"]
    finally:
        actions.__path__.remove(str(tmp_path))
        sys.modules.pop("server.rules.actions.stamp", None)
        registry.cache_clear()


async def test_a_new_action_module_keeps_the_contract(stamp: Action, db):
    await keeps_the_contract(stamp)
    run = await RuleRun.get(action_type="stamp")
    assert run.outputs == {"stamp": "[blue] Approved: Acme roof"}  # its template rendered by the engine


async def test_a_new_action_module_is_in_action_types_the_catalogue_and_validation(stamp: Action, db):
    _, stages = await make_pipeline()
    _, token = await make_token("admin", "Anna")
    transport = httpx.ASGITransport(app=create_app(runtime=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        body = (await client.post("/graphql", json={"query": "{ actionTypes { key title group outputs params {"
                                                              " name type required default choices } } }"})).json()
    [listed] = [a for a in body["data"]["actionTypes"] if a["key"] == "stamp"]
    assert listed == {"key": "stamp", "title": "Stamp", "group": "documents", "outputs": ["stamp"], "params": [
        {"name": "text", "type": "template", "required": True, "default": None, "choices": []},
        {"name": "ink", "type": "choice", "required": False, "default": "red", "choices": ["red", "blue"]},
    ]}

    admin = await make_user("Root", role="admin")
    session = await auth.create_session(admin, stage=auth.STAGE_FULL)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test",
                                 cookies={"pw_session": session}) as browser:
        catalogue = await browser.get(f"/admin/stages/{stages['offer'].id}/rules/new")
        form = await browser.get(f"/admin/stages/{stages['offer'].id}/rules/new?type=stamp")
    assert catalogue.status_code == 200, catalogue.text
    assert "<h2 id=\"group-documents\">Documents</h2>" in catalogue.text
    assert f'href="/admin/stages/{stages["offer"].id}/rules/new?type=stamp">Stamp</a></h3>' in catalogue.text
    assert "<p>Stamps the element with a coloured word.</p>" in catalogue.text
    assert "Later rules can use: the stamp as printed." in catalogue.text
    assert form.status_code == 200 and 'name="p.text"' in form.text and '<option value="blue">' in form.text

    with pytest.raises(ValidationFailed) as refused:
        await add_rule(stages["offer"], "stamp", {"text": "", "ink": "green"})
    assert {e.field for e in refused.value.errors} == {"params.text", "params.ink"}
    saved = await add_rule(stages["offer"], "stamp", {"text": "Seen by {{deal.responsible.name}}"})
    assert (saved.action_type, saved.params["text"]) == ("stamp", "Seen by {{deal.responsible.name}}")


async def test_a_new_action_module_shows_in_the_demo_by_its_example(stamp: Action, db):
    assert await load_demo_if_empty()

    [rule] = await Rule.filter(action_type="stamp")
    assert (rule.title, rule.params) == ("Stamp it approved", {"text": "Approved: {{deal.title}}", "ink": "blue"})
    assert {r.action_type for r in await Rule.all()} == set(registry())  # every action in the demo

    async def stamped() -> list[RuleRun]:
        return await RuleRun.filter(action_type="stamp", status="succeeded")

    [run] = await wait_until(stamped, what="the demo's new deal to be stamped")
    assert run.outputs["stamp"].startswith("[blue] Approved: Nordlicht")
