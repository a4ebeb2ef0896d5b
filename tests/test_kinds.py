"""Types as the spec: the domain's word sets are enums everywhere (code, GraphQL), with the words stored today,
and every action is typed over its own params model."""

from typing import Any, get_args, get_origin

import pytest
from graphql import GraphQLEnumType, GraphQLNonNull, GraphQLOutputType

from server.kinds import ElementType, Lane, Role, RunStatus, StageRunStatus, StageSemantic
from server.rules.actions import registry
from server.rules.actions.base import Action
from server.schema.schema import schema

OUTPUT_FIELDS = [
    ("RuleRun", "status", RunStatus),
    ("RuleRunEvent", "status", RunStatus),
    ("RuleRunEvent", "elementType", ElementType),
    ("ElementEvent", "elementType", ElementType),
    ("CustomerActivity", "elementType", ElementType),
    ("StageRun", "status", StageRunStatus),
    ("Rule", "lane", Lane),
    ("User", "role", Role),
    ("Stage", "semantic", StageSemantic),
    ("Pipeline", "entityType", ElementType),
]


def _named(field_type: GraphQLOutputType) -> Any:
    return field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type


@pytest.mark.parametrize(("type_name", "field", "kind"), OUTPUT_FIELDS)
def test_output_fields_are_enums_whose_wire_values_are_the_stored_words(type_name: str, field: str, kind: Any) -> None:
    graphql_type = schema._schema.get_type(type_name)
    output = _named(graphql_type.fields[field].type)
    assert isinstance(output, GraphQLEnumType), f"{type_name}.{field} is {output}, not an enum"
    # The enum value names are what a client reads in the JSON: exactly the strings of the database.
    assert list(output.values) == [member.value for member in kind]


def test_enum_members_are_the_strings_they_stand_for() -> None:
    """Members compare equal to, and format as, the stored words, so rows written before stay readable."""
    assert RunStatus.succeeded == "succeeded" and f"{Lane.after_previous}" == "after_previous"
    assert [str(m) for m in Role] == ["admin", "manager", "employee"]


def test_every_action_is_typed_over_its_own_params_model() -> None:
    """`Action[P]`: execute, release, check and describe take the model the engine validates with (`Params`)."""
    untyped = []
    for key, action in registry().items():
        bases = [base for cls in type(action).__mro__ for base in getattr(cls, "__orig_bases__", ())
                 if get_origin(base) is Action]
        if not bases or get_args(bases[0]) != (action.Params,):
            untyped.append(f"{key}: {bases[0] if bases else type(action).__bases__}")
    assert not untyped, "actions not parameterised with their Params: " + ", ".join(untyped)
