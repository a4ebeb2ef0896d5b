"""Delete element: delete the lead or deal. Its pending runs are cancelled; timeline and run log stay."""

from server.i18n import N_
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params
from server.rules.context import RunContext


class DeleteElementParams(Params):
    pass


class DeleteElement(Action[DeleteElementParams]):
    key = "delete_element"
    title = N_("Delete element")
    summary = N_("Deletes the element; its run log and timeline are kept.")
    group = "element"
    Params = DeleteElementParams
    example = Example("Delete the element")

    async def execute(self, ctx: RunContext, params: DeleteElementParams) -> Done:
        await ctx.add_entry("history", f"Deleted by the rule '{ctx.run.title}'")
        await ctx.delete_element(reason=f"the {ctx.element_type} was deleted by the rule '{ctx.run.title}'")
        return Done({})

    def describe(self, params: DeleteElementParams, names: Names = NO_NAMES) -> str:
        return "Deletes the element (its pending rules are cancelled, its history is kept)"


ACTION = DeleteElement()
