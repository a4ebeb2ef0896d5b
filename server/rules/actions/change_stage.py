"""Change stage: move the element to another stage of its pipeline (guarded against loops)."""

from server.errors import ActionError
from server.i18n import N_
from server.models import Stage
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params, StageId, UserId, unknown_users
from server.rules.context import RunContext
from server.rules.preview import PreviewContext


class ChangeStageParams(Params):
    stage: StageId
    """the stage the element moves to (its rules run)"""
    run_as: UserId | None = None
    """on whose behalf it moves (the audit trail names them); empty: the rule's run-as user"""


class ChangeStage(Action[ChangeStageParams]):
    key = "change_stage"
    title = N_("Change stage")
    summary = N_("Moves the element to another stage of its pipeline.")
    gives = N_("the stage it moved to")
    group = "element"
    Params = ChangeStageParams
    outputs = ("stage",)
    example = Example("Move on to Won", {"stage": "success"})

    async def check(self, params: ChangeStageParams, *, stage_id: int) -> list[tuple[str, str]]:
        own = await Stage.get(id=stage_id)
        target = await Stage.get_or_none(id=params.stage)
        problems = []
        if target is None or target.pipeline_id != own.pipeline_id:
            problems.append(("stage", "the target stage must be a stage of this pipeline"))
        elif target.id == own.id:
            problems.append(("stage", "the target stage must differ from the stage the rule is on"))
        return problems + await unknown_users(run_as=params.run_as)

    async def execute(self, ctx: RunContext, params: ChangeStageParams) -> Done:
        target = await Stage.get_or_none(id=params.stage)
        if target is None or target.pipeline_id != ctx.element.pipeline_id:
            raise ActionError(f"stage {params.stage} is not in the element's pipeline")
        await ctx.move_to(target, actor_id=params.run_as)
        return Done({"stage": target.code})

    async def simulate(self, ctx: PreviewContext, params: ChangeStageParams) -> str:
        target = await Stage.get_or_none(id=params.stage)
        if target is None or target.pipeline_id != ctx.element.pipeline_id:
            raise ActionError(f"stage {params.stage} is not a stage of the element's pipeline")
        return f"moves the {ctx.element_type} to “{target.name}”, whose rules then start"

    def describe(self, params: ChangeStageParams, names: Names = NO_NAMES) -> str:
        return f"Moves the element to {names.stage(params.stage)}"


ACTION = ChangeStage()
