"""Modify element: set any number of fields, each checked against its field type."""



from server.i18n import N_
from server.models import Stage
from server.rules import elements
from server.rules.actions.base import (
    NO_NAMES,
    Action,
    Done,
    Example,
    FieldMapParams,
    Names,
    field_map_problems,
    unknown_users,
)
from server.rules.context import RunContext
from server.rules.templates import render_async

ModifyElementParams = FieldMapParams


class ModifyElement(Action[ModifyElementParams]):
    key = "modify_element"
    title = N_("Modify element")
    summary = N_("Sets fields of the element to fixed values or placeholders.")
    gives = N_("whether a field changed")
    group = "element"
    Params = ModifyElementParams
    outputs = ("changed",)
    example = Example("Close today", {"fields": {"close_date": "{{today}}"}})
    database_only = True

    async def check(self, params: ModifyElementParams, *, stage_id: int) -> list[tuple[str, str]]:
        stage = await Stage.get(id=stage_id).prefetch_related("pipeline")
        problems = await field_map_problems(params.fields, await elements.field_types(stage.pipeline.entity_type),
                                            elements.coerce_value, owner=stage.pipeline.entity_type, required="title")
        return problems + await unknown_users(run_as=params.run_as)

    async def execute(self, ctx: RunContext, params: ModifyElementParams) -> Done:
        templated = any(isinstance(v, str) and "{" in v for v in params.fields.values())
        context = await ctx.context() if templated else {}
        values = {k: await render_async(v, context) if isinstance(v, str) else v for k, v in params.fields.items()}
        changes = await elements.coerce_changes(ctx.element_type, values)
        changed = await ctx.change_fields(changes, actor_id=params.run_as)
        return Done({"changed": changed})

    def describe(self, params: ModifyElementParams, names: Names = NO_NAMES) -> str:
        return "Sets " + ", ".join(f"{k} to {v!r}" for k, v in params.fields.items())


ACTION = ModifyElement()
