"""Query cost: every field counts once per item its parents can return; lists multiply by their size.

Every list that grows with use (connections, an element's timeline and runs, activities, a deal's
contacts) takes a `first` or `last` argument of at most MAX_PAGE: it multiplies by that number (its
default when left out, MAX_PAGE when it comes from a variable). Lists only admins make longer
(pipelines and stages, rules and the current runs of a stage's rules, users, API tokens, the action
catalogue) multiply by CONFIGURATION_GUESS; BOUNDED_LISTS names the others with their largest size.
Fields that can hold long text (a rendered comment, a description, custom fields, outputs) count by
their size too: LARGE_FIELDS weighs each in units of about a kilobyte, so the cost bounds the answer's
size (about MAX_COST kilobytes), not only its item count.
Fragments are followed where they are spread, so they cannot hide cost.
"""

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
)

from server.errors import MAX_LISTED_ERRORS
from server.services.clients import MAX_ADDRESSES
from server.services.hooks import CHANNELS as WEBHOOK_CHANNELS
from server.services.bookings import MAX_RESOURCES
from server.services.explain import MAX_STAYS
from server.services.paging import MAX_PAGE

MAX_COST = 25_000
CONFIGURATION_GUESS = 10
SIZE_ARGUMENTS = ("first", "last")
# Lists of objects without a size argument, and why they cannot grow past a bound.
CONFIGURATION_LISTS = frozenset({
    "Query.users", "Query.pipelines", "Query.rules", "Query.apiTokens", "Query.actionTypes",
    "Pipeline.stages", "StageRules.rules", "ActionType.params", "StageList.stages",
    # one run per rule of the stage the element is in
    "Element.currentRuns", "Lead.currentRuns", "Deal.currentRuns",
    # customer channels: the senders an admin configures
    "Query.mailSenders",
    # triggers: the catalogue, a stage's triggers (services/triggers.py: at most 50 a stage), the settings of a
    # trigger type, and an activation's evaluations (one per trigger of the pipeline an admin configured)
    "Query.triggerTypes", "TriggerType.settings", "TriggerType.dataFields", "Stage.triggers",
    "StageTriggers.triggers", "TriggerActivation.evaluations",
    # dry run and explain: one preview or run per rule of a stage, one evaluation per trigger of the pipeline
    "DryRun.rules", "DryRun.triggers", "StayExplanation.runs", "ActivationExplanation.evaluations",
    # a diff of two revisions: one entry per rule or trigger of the stage that changed, one change per field
    # (params and settings key by key: the keys of the action's or trigger type's model)
    "PartDiff.changed", "ItemChange.changes",
})
BOUNDED_LISTS = {
    "MarkedRead.notifications": MAX_PAGE,  # markNotificationsRead takes at most MAX_PAGE ids
    "ValidationError.errors": MAX_LISTED_ERRORS,
    # a client's typed addresses: services/clients.py refuses more
    "Contact.emailAddresses": MAX_ADDRESSES, "Contact.phoneNumbers": MAX_ADDRESSES,
    "Company.emailAddresses": MAX_ADDRESSES, "Company.phoneNumbers": MAX_ADDRESSES,
    "ChannelSettings.webhooks": len(WEBHOOK_CHANNELS),  # one per webhook channel
    "StageRevisions.revisions": MAX_PAGE,  # stageRevisions(first:) pages through them
    "Booked.bookings": MAX_RESOURCES,  # one per resource booked at once (rules/bookings.py refuses more)
    # explain reads at most MAX_STAYS stays and the 50 newest trigger activations (services/explain.py)
    "Explanation.stays": MAX_STAYS, "Explanation.activations": MAX_STAYS,
}


# A field's weight: the kilobytes it can hold (rule templates render up to 64 KiB; API texts up to 20,000
# characters; custom fields are maps of such values). Rule outputs are what actions return: codes, ids, names.
RENDERED = 64
WRITTEN = 20
LARGE_FIELDS = {
    "TimelineEntry.text": RENDERED, "Activity.description": RENDERED, "Notification.text": RENDERED,
    "CustomerActivity.text": RENDERED, "FeedPost.body": RENDERED,
    "Deal.custom": RENDERED, "Lead.custom": RENDERED, "Contact.custom": RENDERED, "Company.custom": RENDERED,
    "AuditEntry.oldValue": WRITTEN, "AuditEntry.newValue": WRITTEN, "Rule.params": WRITTEN,
    # a message's bodies are rendered templates (outbound) or what a customer sent
    "Message.text": RENDERED, "Message.html": RENDERED,
    # a trigger activation's event data is cut at DATA_SHOWN characters (schema/types.py)
    "TriggerActivation.data": 16, "Trigger.settings": WRITTEN, "Trigger.condition": WRITTEN,
    # a dry run's params and effects are rendered templates
    "RulePreview.params": RENDERED, "RulePreview.effect": RENDERED,
}


def list_size(parent: str, name: str, definition: GraphQLField, node: FieldNode) -> int:
    """How many items a list field can return, as the cost counts it."""
    for argument in node.arguments or ():
        if argument.name.value in SIZE_ARGUMENTS:
            value = argument.value
            asked = int(value.value) if isinstance(value, IntValueNode) else MAX_PAGE
            return max(1, min(asked, MAX_PAGE))  # out of range is refused when it runs; never a discount
    for argument_name in SIZE_ARGUMENTS:
        declared = definition.args.get(argument_name)
        if declared is not None and isinstance(declared.default_value, int):
            return declared.default_value
    return BOUNDED_LISTS.get(f"{parent}.{name}", CONFIGURATION_GUESS)


def _is_list(definition: GraphQLField) -> bool:
    field_type = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
    return isinstance(field_type, GraphQLList)


class QueryCostRule(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        schema = self.context.schema
        root = schema.get_root_type(node.operation)
        cost = self._cost(node.selection_set, root, 1, set())
        if cost > MAX_COST:
            self.report_error(GraphQLError(
                f"query cost {cost} is over the limit of {MAX_COST}: ask for fewer items (first) or fewer fields",
                node,
            ))

    def _cost(self, selection_set: SelectionSetNode | None, parent: Any, multiplier: int, seen: set[str]) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        fields = getattr(parent, "fields", {})
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                definition = fields.get(selection.name.value)
                if definition is None:
                    continue
                total += multiplier * LARGE_FIELDS.get(f"{parent.name}.{selection.name.value}", 1)
                named = get_named_type(definition.type)
                factor = 1
                if named.name.endswith("Connection"):
                    factor = list_size(parent.name, selection.name.value, definition, selection)
                elif _is_list(definition) and not parent.name.endswith("Connection"):
                    factor = list_size(parent.name, selection.name.value, definition, selection)
                total += self._cost(selection.selection_set, named, multiplier * factor, seen)
            elif isinstance(selection, InlineFragmentNode):
                target = self.context.schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                total += self._cost(selection.selection_set, target, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in seen:
                    continue  # unknown or cyclic fragments are other rules' errors
                target = self.context.schema.get_type(fragment.type_condition.name.value)
                total += self._cost(fragment.selection_set, target, multiplier, seen | {name})
        return total
