"""Change company: set fields of the element's linked company, each checked against its field type.

Change contact is the same on the first linked contact.
"""

from typing import ClassVar

from server.errors import ActionError
from server.i18n import N_
from server.models import Company, Contact
from server.rules import clients, elements
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

ChangeClientParams = FieldMapParams


class ChangeCompany(Action[ChangeClientParams]):
    key = "change_company"
    title = N_("Change company")
    summary = N_("Changes fields of the element's company.")
    gives = N_("whether a field changed, and the company")
    group = "element"
    Params = ChangeClientParams
    outputs = ("changed", "company_id")
    client_type: ClassVar[str] = "company"
    example = Example("Send invoices to accounts", {"fields": {"email": "accounts@example.com"}})

    async def check(self, params: ChangeClientParams, *, stage_id: int) -> list[tuple[str, str]]:
        problems = await field_map_problems(params.fields, await clients.field_types(self.client_type),
                                            clients.coerce_client_value, owner=self.client_type, required="name")
        return problems + await unknown_users(run_as=params.run_as)

    async def linked(self, ctx: RunContext) -> Contact | Company | None:
        return await Company.get_or_none(id=ctx.element.company_id) if ctx.element.company_id else None

    async def execute(self, ctx: RunContext, params: ChangeClientParams) -> Done:
        client = await self.linked(ctx)
        if client is None:
            raise ActionError(f"the {ctx.element_type} has no linked {self.client_type} to change")
        templated = any(isinstance(v, str) and "{" in v for v in params.fields.values())
        context = await ctx.context() if templated else {}
        values = {k: await render_async(v, context) if isinstance(v, str) else v for k, v in params.fields.items()}
        changes = await clients.coerce_changes(self.client_type, values)
        # Lock the client row: two elements linked to it may run rules at the same time.
        client = await type(client).filter(id=client.id).select_for_update().first()
        if client is None:
            raise ActionError(f"the linked {self.client_type} was deleted meanwhile")
        changed = await clients.apply_changes(
            self.client_type, client, changes, actor_id=params.run_as or ctx.actor_id, rule_run_id=ctx.run.id
        )
        return Done({"changed": changed, f"{self.client_type}_id": client.id})

    def describe(self, params: ChangeClientParams, names: Names = NO_NAMES) -> str:
        return f"Sets on the linked {self.client_type} " + ", ".join(f"{k} to {v!r}" for k, v in params.fields.items())


class ChangeContact(ChangeCompany):
    key = "change_contact"
    title = N_("Change contact")
    summary = N_("Changes fields of the element's contact.")
    gives = N_("whether a field changed, and the contact")
    outputs = ("changed", "contact_id")
    client_type = "contact"
    example = Example("Record the direct line", {"fields": {"phone": "+49 30 5550 0100"}})

    async def linked(self, ctx: RunContext) -> Contact | Company | None:
        return await elements.first_contact(ctx.element_type, ctx.element)

    def describe(self, params: ChangeClientParams, names: Names = NO_NAMES) -> str:
        return "Sets on the first linked contact " + ", ".join(f"{k} to {v!r}" for k, v in params.fields.items())


ACTION = ChangeCompany()
