"""A stage's history, rollback and a rule's operations in the admin over plain HTTP, against `pipewright serve`
with the demo data: the board links the history, two revisions are compared, a rollback asks first and needs
the CSRF token, a rule is paused and resumed from its page (the board shows a badge), and a backfill counts
first."""

from tests.support.admin import Server, csrf_of
from tests.web.test_admin_triggers import logged_in, pipeline_id, rows


def a_stage_with_two_rules(server: Server) -> tuple[int, list[int]]:
    [(stage,)] = rows(server, "SELECT r.stage_id FROM rule r JOIN stage s ON s.id = r.stage_id JOIN pipeline p "
                              "ON p.id = s.pipeline_id WHERE p.name = 'Sales' GROUP BY r.stage_id "
                              "HAVING COUNT(*) >= 2 ORDER BY r.stage_id LIMIT 1")
    return stage, [r for (r,) in rows(server, "SELECT id FROM rule WHERE stage_id = ? ORDER BY position, id", stage)]


async def test_history_compares_two_revisions_and_rolls_back_after_asking(server: Server) -> None:
    stage, order = a_stage_with_two_rules(server)
    async with logged_in(server, "history@example.com") as http:
        board = await http.get(f"/admin/pipelines/{pipeline_id(server, 'Sales')}")
        assert f'href="/admin/stages/{stage}/history"' in board.text
        token = csrf_of(board.text)
        moved = await http.post(f"/admin/rules/{order[0]}/move", data={"direction": "down", "csrf_token": token})
        assert moved.status_code == 303
        [(revision,)] = rows(server, "SELECT revision FROM stage WHERE id = ?", stage)

        history = await http.get(f"/admin/stages/{stage}/history")
        assert history.status_code == 200 and "rules reordered" in history.text
        assert f'href="/admin/stages/{stage}/rollback/{revision - 1}"' in history.text
        compared = await http.get(f"/admin/stages/{stage}/history?from={revision - 1}&to={revision}")
        assert "<code>position</code>" in compared.text

        confirm = await http.get(f"/admin/stages/{stage}/rollback/{revision - 1}")
        assert confirm.status_code == 200 and f"back to revision {revision - 1}?" in confirm.text
        refused = await http.post(f"/admin/stages/{stage}/rollback/{revision - 1}")
        assert refused.status_code == 403
        done = await http.post(f"/admin/stages/{stage}/rollback/{revision - 1}",
                               data={"csrf_token": csrf_of(confirm.text)})
        assert done.status_code == 303 and done.headers["location"].endswith(f"?rolled_back={revision + 1}")

    assert [r for (r,) in rows(server, "SELECT id FROM rule WHERE stage_id = ? ORDER BY position, id", stage)] == order
    assert rows(server, "SELECT note FROM stage_revision WHERE stage_id = ? AND number = ?", stage, revision + 1) == [
        (f"rolled back to revision {revision - 1}",)]


async def test_a_rule_is_paused_and_resumed_from_its_page_and_backfill_counts_first(server: Server) -> None:
    stage, [rule, *_] = a_stage_with_two_rules(server)
    async with logged_in(server, "operations@example.com") as http:
        page = await http.get(f"/admin/rules/{rule}/edit")
        assert 'id="operations"' in page.text and "Pause rule" in page.text
        paused = await http.post(f"/admin/rules/{rule}/pause", data={"do": "pause", "csrf_token": csrf_of(page.text)})
        assert paused.status_code == 303
        page = await http.get(f"/admin/rules/{rule}/edit")
        assert "Paused: rule paused by" in page.text and "Resume rule" in page.text
        board = await http.get(f"/admin/pipelines/{pipeline_id(server, 'Sales')}")
        assert 'class="badge paused"' in board.text
        await http.post(f"/admin/rules/{rule}/pause", data={"do": "resume", "csrf_token": csrf_of(page.text)})
        assert rows(server, "SELECT paused_at FROM rule WHERE id = ?", rule) == [(None,)]

        [(missing,)] = rows(server, "SELECT COUNT(*) FROM stage_run s WHERE s.stage_id = ? AND s.status = 'active' "
                                    "AND NOT EXISTS (SELECT 1 FROM rule_run r WHERE r.stage_run_id = s.id "
                                    "AND r.rule_id = ?)", stage, rule)
        counted = await http.get(f"/admin/rules/{rule}/backfill")
        assert counted.status_code == 200 and f"{missing} runs would be made." in counted.text
        assert rows(server, "SELECT COUNT(*) FROM rule_run WHERE revision IS NOT NULL") == [(0,)]
        rerun = await http.get(f"/admin/rules/{rule}/rerun?failed_after=yesterday")
        assert rerun.status_code == 422 and "a date and time, like 2026-12-01T09:30" in rerun.text
