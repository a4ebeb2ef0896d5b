"""The schema the app mounts at /graphql, with its limits and error masking."""

from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext
from strawberry.utils.logging import StrawberryLogger

from server.schema.errors import is_client_mistake, remove_suggestions, should_mask_error, type_error
from server.schema.fresh import FreshLoaders
from server.schema.limits import QueryCostRule
from server.schema.mutations import Mutation
from server.schema.queries import Query
from server.schema.subscriptions import Subscription
from server.schema.types import Deal, Lead

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5_000


class PerEventExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core 3.3.2 gives every subscription event a shallow copy of the subscription's executor,
    sharing its `_relevant_sub_fields` memo, which is keyed by the id() of a list made anew per event:
    one entry per event is kept until the subscription ends (memory grows, long GC pauses; measured
    with bench.api). Each event gets its own memo here."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor


class PipewrightSchema(strawberry.Schema):
    """Errors as the client and the operator need them: client mistakes (a bad id, `first: 0`, an
    invalid query) are typed and not logged as server errors; crashes are logged with their traceback.
    Without `suggestions` (production) graphql-core's "Did you mean …?" hints are removed."""

    def __init__(self, *args: Any, suggestions: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.suggestions = suggestions

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if not self.suggestions:
                remove_suggestions(error)
            if is_client_mistake(error):
                type_error(error)
            else:
                StrawberryLogger.error(error, execution_context)


def make_schema(*, introspection: bool) -> strawberry.Schema:
    # Rule classes are built once per schema: a factory per request would defeat the ValidationCache.
    rules = [
        *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
        QueryCostRule,
    ]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return PipewrightSchema(
        suggestions=introspection,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Lead, Deal],
        config=StrawberryConfig(disable_field_suggestions=True),
        execution_context_class=PerEventExecutionContext,
        extensions=[
            FreshLoaders,
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: AddValidationRules(list(rules)),
            lambda: ValidationCache(maxsize=256),
            lambda: MaskErrors(should_mask_error=should_mask_error),
        ],
    )


schema = make_schema(introspection=True)  # development, tests and the schema.graphql export
production_schema = make_schema(introspection=False)
