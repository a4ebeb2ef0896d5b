"""Issue 9, item 4, as a rule run sees it: a template over a limit fails its run once, with the limit
named, and a render that uses its whole time budget does not stall the event loop the worker shares."""

import asyncio
import time

import pytest

from server.actor import SYSTEM
from server.models import CustomField
from server.services import elements as element_service
from tests.support import add_rule, make_pipeline, wait_for_runs

pytestmark = pytest.mark.production_backend


PROBES = {
    "nested_loops": ("{% for a in range(200) %}{% for b in range(200) %}{% endfor %}{% endfor %}",
                     "template limit: more than 10000 loop steps in one render"),
    "big_range": ("{% for a in range(1000000) %}{% endfor %}", "template limit: range() of 1000000 items"),
    "center": ("{{ 'x'|center(100000000) }}", "template limit: center would build 100000000 characters"),
    "percent": ("{{ ('%100000000s' % 'x')|length }}", "template limit: % would build"),
    "repeat": ("{{ ('x' * 100000000)|length }}", "template limit: * would build 100000000 characters"),
    "overflow": ("{{ 10.0 ** 400 }}", "template limit: OverflowError"),
}


async def test_a_template_over_a_limit_fails_its_run_at_the_first_attempt(db):
    _, stages = await make_pipeline()
    for key, (template, _) in PROBES.items():
        await add_rule(stages["offer"], "add_comment", {"text": f"Probe: {template}"}, key=key)
    deal = await element_service.create_element("deal", {"title": "probe"}, stage_id=stages["offer"].id, actor=SYSTEM)

    runs = await wait_for_runs("deal", deal.id, len(PROBES))

    for run in runs:
        assert run.status == "failed", f"{run.rule_key}: {run.status}"
        assert run.attempts == 1, f"{run.rule_key} was retried: {run.error}"
        assert PROBES[run.rule_key][1] in run.error


async def test_a_slow_render_leaves_the_event_loop_responsive(db):
    """The worker runs actions on this loop (embedded): the render itself must not run on it."""
    await CustomField.create(entity_type="deal", code="notes", name="Notes", type="text")
    _, stages = await make_pipeline()
    await add_rule(stages["offer"], "add_comment", {
        "text": "{% for i in range(10000) %}{% if deal.notes|wordcount > 0 %}{% endif %}{% endfor %}done",
    })
    deal = await element_service.create_element("deal", {"title": "slow", "notes": "word " * 3_900},
                                                stage_id=stages["offer"].id, actor=SYSTEM)
    gaps: list[float] = []
    ticking = asyncio.ensure_future(_tick(gaps))
    try:
        runs = await wait_for_runs("deal", deal.id, 1, timeout_s=20)
    finally:
        ticking.cancel()

    [run] = runs
    assert run.status == "failed" and run.attempts == 1
    assert "template limit: the render took longer than 1000 ms" in run.error
    if db.kind == "sqlite":  # only there does the render share this loop (production: a worker process)
        assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s while the template rendered"


async def _tick(gaps: list[float]) -> None:
    """What any request on the loop would see: how late a 10 ms sleep wakes up."""
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
