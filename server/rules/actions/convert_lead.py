"""Create from (convert lead): a deal, contact and/or company from a lead, linked; the lead moves to its success stage.

The new deal enters the first stage of the chosen pipeline through the engine, so that stage's
rules start; the deal's entry and the lead's move continue this run's causal chain.
"""

import json

from pydantic import model_validator

from server.db import column
from server.errors import ActionError
from server.i18n import N_
from server.models import AuditEntry, Company, Contact, CustomField, Deal, DealContact, Lead, Pipeline, Stage
from server.rules.actions.base import NO_NAMES, Action, Done, Example, Names, PipelineId
from server.rules.actions.create_contact_for_lead import ContactFieldsParams, check_lead_fields, contact_values
from server.rules.context import RunContext


class ConvertLeadParams(ContactFieldsParams):
    create_deal: bool = True
    """make a deal from the lead"""
    pipeline: PipelineId | None = None
    """the deal pipeline the deal goes to; empty: the default deal pipeline"""
    create_contact: bool = True
    """make a contact from the lead (a lead that has a contact keeps it, no second one)"""
    create_company: bool = False
    """make a company from the lead, named from its company_name field, else its title"""

    @model_validator(mode="after")
    def _creates_something(self) -> "ConvertLeadParams":
        if not (self.create_deal or self.create_contact or self.create_company):
            raise ValueError("choose what to create: a deal, a contact, a company, or several")
        return self


async def _deal_pipeline(pipeline_id: int | None) -> Pipeline | None:
    query = Pipeline.filter(entity_type="deal")
    query = query.filter(id=pipeline_id) if pipeline_id is not None else query.order_by("-is_default", "position", "id")
    return await query.first()


async def _first_stage(pipeline: Pipeline) -> Stage | None:
    return await Stage.filter(pipeline_id=pipeline.id).order_by("position", "id").first()


class ConvertLead(Action[ConvertLeadParams]):
    key = "convert_lead"
    title = N_("Create from (convert lead)")
    summary = N_("Makes a deal (and contact, company) from a lead.")
    gives = N_("the new deal, contact and company")
    group = "element"
    Params = ConvertLeadParams
    outputs = ("deal_id", "contact_id", "company_id")
    example = Example("Convert into a deal", {"pipeline": "deal"}, entity_type="lead")

    async def check(self, params: ConvertLeadParams, *, stage_id: int) -> list[tuple[str, str]]:
        problems = await check_lead_fields(params, stage_id)
        if params.create_deal:
            pipeline = await _deal_pipeline(params.pipeline)
            if pipeline is None:
                problems.append(("pipeline", "choose a deal pipeline" if params.pipeline is not None
                                 else "there is no deal pipeline to create the deal in"))
            elif await _first_stage(pipeline) is None:
                problems.append(("pipeline", f"the pipeline '{pipeline.name}' has no stages"))
        return problems

    async def execute(self, ctx: RunContext, params: ConvertLeadParams) -> Done:
        lead = ctx.element
        if not isinstance(lead, Lead):
            raise ActionError("Create from (convert lead) works on leads only")
        if lead.converted_deal_id is not None:
            if await AuditEntry.exists(element_type="lead", element_id=lead.id, field="converted_deal",
                                       rule_run_id=ctx.run.id):
                return Done({"deal_id": lead.converted_deal_id, "contact_id": lead.contact_id,
                             "company_id": lead.company_id})  # this run's effect is already there
            raise ActionError(f"the lead was already converted into deal {lead.converted_deal_id}")
        responsible_id = params.responsible or lead.responsible_id
        lead_changes: dict[str, int] = {}
        company_id = lead.company_id
        if params.create_company and company_id is None:
            name = str((lead.custom or {}).get("company_name") or lead.title).strip()[:200]
            company = await Company.create(name=name, responsible_id=responsible_id)
            company_id = lead_changes["company"] = company.id
        contact_id = lead.contact_id
        if params.create_contact and contact_id is None:
            contact = await Contact.create(**contact_values(lead, params), company_id=company_id,
                                           responsible_id=responsible_id)
            contact_id = lead_changes["contact"] = contact.id
        if lead_changes:
            await ctx.change_fields(lead_changes)
        deal_id = await self._create_deal(ctx, params, lead, responsible_id, company_id, contact_id) \
            if params.create_deal else None
        created = ", ".join(f"{kind} {ident}" for kind, ident in
                            (("deal", deal_id), ("contact", lead_changes.get("contact")),
                             ("company", lead_changes.get("company"))) if ident)
        await ctx.add_entry("history", f"Converted: created {created or 'nothing new (already linked)'}")
        success = await Stage.filter(pipeline_id=lead.pipeline_id, semantic="success").order_by("position", "id").first()
        if success is not None and success.id != lead.stage_id:
            await ctx.move_to(success)
        return Done({"deal_id": deal_id, "contact_id": contact_id, "company_id": company_id})

    async def _create_deal(self, ctx: RunContext, params: ConvertLeadParams, lead: Lead, responsible_id: int | None,
                           company_id: int | None, contact_id: int | None) -> int:
        pipeline = await _deal_pipeline(params.pipeline)
        stage = await _first_stage(pipeline) if pipeline else None
        if pipeline is None or stage is None:
            raise ActionError("the deal pipeline of the rule is gone or has no stages")
        deal_fields = set(await column(CustomField.filter(entity_type="deal"), "code"))
        deal = await Deal.create(
            title=lead.title, pipeline_id=pipeline.id, stage_id=stage.id, responsible_id=responsible_id,
            company_id=company_id, amount=lead.amount, currency=lead.currency,
            custom={k: v for k, v in (lead.custom or {}).items() if k in deal_fields},
        )
        if contact_id is not None:
            await DealContact.create(deal_id=deal.id, contact_id=contact_id, position=0)
        lead.converted_deal_id = deal.id
        await lead.save(update_fields=["converted_deal_id"])
        await AuditEntry.create(element_type="lead", element_id=lead.id, field="converted_deal",
                                old_value=json.dumps(None), new_value=json.dumps(deal.id),
                                actor_id=ctx.actor_id, rule_run_id=ctx.run.id)
        await ctx.enter_stage("deal", deal, stage, reason=f"created from lead {lead.id}")
        return deal.id

    def describe(self, params: ConvertLeadParams, names: Names = NO_NAMES) -> str:
        made = [kind for kind, wanted in (("deal", params.create_deal), ("contact", params.create_contact),
                                          ("company", params.create_company)) if wanted]
        where = f" in {names.pipeline(params.pipeline)}" if params.create_deal and params.pipeline else ""
        return f"Converts the lead: creates a {' and '.join(made)}{where}, links them, moves the lead to success"


ACTION = ConvertLead()
