"""Add to exceptions: every email address and phone number of the element's clients goes on the exception list,
so later mail and calls from them are counted but not stored; optionally the element is deleted too.

An address already listed stays as it is (its note and counts are kept), so running the rule again adds
nothing twice.
"""

from pydantic import Field

from server.channels.addresses import normalise
from server.i18n import N_
from server.kinds import AddressKind
from server.models import ExceptionEntry
from server.rules import clients
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, Params
from server.rules.context import RunContext

NOTE_CHARS = 255  # ExceptionEntry.note


class AddToExceptionsParams(Params):
    delete_element: bool = Field(default=False, description="also delete the lead or deal (its history is kept)")


class AddToExceptions(Action[AddToExceptionsParams]):
    key = "add_to_exceptions"
    title = N_("Add to exceptions")
    summary = N_("Stops storing mail and calls from the client's addresses and numbers, and can delete the element.")
    gives = N_("whether addresses were added")
    group = "communication"
    Params = AddToExceptionsParams
    outputs = ("added",)
    example = Example("Stop storing this client's mail and calls")

    async def execute(self, ctx: RunContext, params: AddToExceptionsParams) -> Done:
        found: dict[str, AddressKind] = {}  # normalised value → kind, in the order the clients list them
        for row in await clients.element_clients(ctx.element_type, ctx.element):
            for kind in (AddressKind.email, AddressKind.phone):
                for address in clients.addresses(row, kind):
                    if value := normalise(kind, address):
                        found.setdefault(value, kind)
        listed = {row.value for row in await ExceptionEntry.filter(value__in=list(found)).only("id", "value")}
        new = [value for value in found if value not in listed]
        note = f"{ctx.element_type} {ctx.element.id}, rule “{ctx.run.title}”"[:NOTE_CHARS]
        # A rule on another element listing the same address at the same moment: its row wins, ours is dropped.
        await ExceptionEntry.bulk_create(
            [ExceptionEntry(kind=found[value], value=value, note=note, created_by_id=ctx.actor_id,
                            rule_run_id=ctx.run.id) for value in new],
            ignore_conflicts=True,
        )
        if params.delete_element:
            await ctx.delete_element(
                reason=f"the {ctx.element_type} was deleted by the rule '{ctx.run.title}' (added to exceptions)")
        elif new:
            await ctx.add_entry("history", f"Added to the exception list: {', '.join(new)}")
        elif found:
            await ctx.add_entry("history", f"Already on the exception list: {', '.join(found)}")
        else:
            await ctx.add_entry("history", "Nothing to add to the exception list: the contact and company have no "
                                           "email address or phone number")
        return Done({"added": len(new)})

    def describe(self, params: AddToExceptionsParams, names: Names = NO_NAMES) -> str:
        what = "Puts the email addresses and phone numbers of the contact and company on the exception list"
        return f"{what} and deletes the element" if params.delete_element else what


ACTION = AddToExceptions()
