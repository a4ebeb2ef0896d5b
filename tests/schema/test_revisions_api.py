"""Revisions, re-runs and pausing through GraphQL, as an admin uses them; an employee is refused."""

import pytest

from server.actor import SYSTEM
from server.kinds import RunStatus
from server.models import RuleRun
from server.services import elements as element_service
from tests.support import make_pipeline, make_token, wait_for_runs
from tests.support.api import Api

UPDATE = """mutation($id: ID!, $text: String!) { updateRule(id: $id, input: {params: {text: $text}}) {
  __typename ... on Rule { id } } }"""
HISTORY = """query($stage: ID!) { stageRevisions(stageId: $stage) { __typename
  ... on StageRevisions { revisions { number note authorName rules } } ... on ForbiddenError { message } } }"""
DIFF = """query($stage: ID!, $from: Int!, $to: Int!) { stageRevisionDiff(stageId: $stage, from: $from, to: $to) {
  __typename ... on StageRevisionDiff { rules { added removed changed { name changes { field old new } } } }
  ... on ValidationError { errors { field message } } } }"""
ROLLBACK = """mutation($stage: ID!, $to: Int!) { rollbackStage(stageId: $stage, toRevision: $to) {
  __typename ... on StageRevision { number note } } }"""
RUNS = """query($rule: ID!) { ruleRuns(ruleId: $rule, first: 10, oldestFirst: true) {
  edges { node { id status revision reason rerunAsId } } } }"""


@pytest.mark.production_backend
async def test_history_diff_rollback_and_the_revision_each_run_ran_with(db, api: Api):
    admin, token = await make_token("admin", "Maria")
    _, stages = await make_pipeline()
    offer = stages["offer"].id
    created = await api.as_(token, """mutation($stage: ID!) { createRule(stageId: $stage, input: {
      actionType: "add_comment", params: {text: "v1"}}) { ... on Rule { id } } }""", stage=offer)
    rule = created["createRule"]["id"]
    early = await element_service.create_element("deal", {"title": "early"}, stage_id=offer, actor=SYSTEM)
    await wait_for_runs("deal", early.id, 1)
    for text in ("v2", "v3"):
        await api.as_(token, UPDATE, id=rule, text=text)
    late = await element_service.create_element("deal", {"title": "late"}, stage_id=offer, actor=SYSTEM)
    await wait_for_runs("deal", late.id, 1)

    history = (await api.as_(token, HISTORY, stage=offer))["stageRevisions"]["revisions"]
    assert [(r["number"], r["authorName"]) for r in history] == [(3, "Maria"), (2, "Maria"), (1, "Maria")]
    diff = (await api.as_(token, DIFF, stage=offer, **{"from": 1, "to": 3}))["stageRevisionDiff"]["rules"]
    assert diff["changed"][0]["changes"] == [{"field": "params.text", "old": "v1", "new": "v3"}]
    runs = (await api.as_(token, RUNS, rule=rule))["ruleRuns"]["edges"]
    assert [n["node"]["revision"] for n in runs] == [1, 3]

    rolled = (await api.as_(token, ROLLBACK, stage=offer, to=1))["rollbackStage"]
    assert rolled == {"__typename": "StageRevision", "number": 4, "note": "rolled back to revision 1"}
    rules = (await api.as_(token, "query($s: ID!) { rules(stageId: $s) { params } }", s=offer))["rules"]
    assert rules[0]["params"]["text"] == "v1"
    unknown = (await api.as_(token, DIFF, stage=offer, **{"from": 1, "to": 9}))["stageRevisionDiff"]
    assert unknown["errors"] == [{"field": "to", "message": f"stage {offer} has no revision 9"}]
    _, employee = await make_token("employee", "Emil")
    assert (await api.as_(employee, HISTORY, stage=offer))["stageRevisions"]["__typename"] == "ForbiddenError"


async def test_rerun_failed_counts_first_then_schedules_and_pause_holds_runs(db, api: Api, monkeypatch):
    from server import config
    from server.errors import ActionError
    from server.rules.actions.add_comment import AddComment

    real = AddComment.execute

    async def down(self, ctx, params):
        raise ActionError("the service said no")

    monkeypatch.setattr(AddComment, "execute", down)
    monkeypatch.setenv("PIPEWRIGHT_PAUSE_AFTER_FAILURES", "0")
    config.reload()
    _, token = await make_token("admin", "Maria")
    _, stages = await make_pipeline()
    created = await api.as_(token, """mutation($stage: ID!) { createRule(stageId: $stage, input: {
      actionType: "add_comment", params: {text: "hi"}}) { ... on Rule { id } } }""", stage=stages["offer"].id)
    rule = created["createRule"]["id"]
    for n in range(2):
        deal = await element_service.create_element("deal", {"title": f"d{n}"}, stage_id=stages["offer"].id,
                                                    actor=SYSTEM)
        await wait_for_runs("deal", deal.id, 1)
    monkeypatch.setattr(AddComment, "execute", real)
    rerun = """mutation($rule: ID!, $confirm: Boolean!, $n: Int) { rerunFailedRuns(ruleId: $rule,
      filter: {errorContains: "said no"}, confirm: $confirm, expectedCount: $n) {
      __typename ... on RerunPlan { count scheduled } ... on ValidationError { errors { field message } } } }"""

    pause = await api.as_(token, """mutation($rule: ID!) { pauseRule(ruleId: $rule) {
      ... on Rule { pausedAt pauseReason } } }""", rule=rule)
    assert pause["pauseRule"]["pauseReason"].startswith("rule paused by Maria at ")
    counted = (await api.as_(token, rerun, rule=rule, confirm=False))["rerunFailedRuns"]
    assert counted == {"__typename": "RerunPlan", "count": 2, "scheduled": False}
    stale = (await api.as_(token, rerun, rule=rule, confirm=True, n=5))["rerunFailedRuns"]
    assert stale["errors"][0]["field"] == "expectedCount" and "2 now, not 5" in stale["errors"][0]["message"]
    done = (await api.as_(token, rerun, rule=rule, confirm=True, n=2))["rerunFailedRuns"]
    assert done == {"__typename": "RerunPlan", "count": 2, "scheduled": True}

    async def held() -> bool:
        runs = await RuleRun.filter(revision__not_isnull=True)
        return len(runs) == 2 and all(r.reason and r.reason.startswith("rule paused by Maria") for r in runs)

    from tests.support import wait_until

    await wait_until(held, timeout_s=10, what="the re-runs to wait for the paused rule")
    await api.as_(token, "mutation($rule: ID!) { resumeRule(ruleId: $rule) { __typename } }", rule=rule)

    async def succeeded() -> bool:
        return await RuleRun.filter(revision__not_isnull=True, status=RunStatus.succeeded).count() == 2

    await wait_until(succeeded, timeout_s=10, what="the re-runs to succeed")
    runs = (await api.as_(token, RUNS, rule=rule))["ruleRuns"]["edges"]
    assert [n["node"]["status"] for n in runs] == ["failed", "failed", "succeeded", "succeeded"]
    assert runs[0]["node"]["rerunAsId"] == runs[2]["node"]["id"]
