"""Query cost: every field counts once per item its parents can return; lists multiply.

A connection multiplies by its `first` (or its default); other lists by LIST_GUESS. Fragments
are followed where they are spread, so they cannot hide cost. Variables count as the maximum.
"""

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
)

from server.services.paging import MAX_PAGE

MAX_COST = 25_000
CONNECTION_DEFAULT = 50
LIST_GUESS = 10


def _first(node: FieldNode, default: int) -> int:
    for argument in node.arguments or ():
        if argument.name.value == "first":
            value = argument.value
            return int(value.value) if isinstance(value, IntValueNode) else MAX_PAGE
    return default


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
                total += multiplier
                named = get_named_type(definition.type)
                field_type = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else definition.type
                factor = 1
                if named.name.endswith("Connection"):
                    factor = _first(selection, CONNECTION_DEFAULT)
                elif isinstance(field_type, GraphQLList) and not parent.name.endswith("Connection"):
                    factor = _first(selection, LIST_GUESS)
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
