"""The schema the app mounts at /graphql, with its limits and error masking."""

import strawberry
from strawberry.extensions import AddValidationRules, MaskErrors, MaxAliasesLimiter, QueryDepthLimiter, ValidationCache
from strawberry.schema.config import StrawberryConfig

from server.schema.errors import should_mask_error
from server.schema.mutations import Mutation
from server.schema.queries import Query
from server.schema.types import Deal, Lead

# Built once: a factory per request would make new rule classes and defeat the ValidationCache.
LIMITS = (
    *QueryDepthLimiter(max_depth=10).validation_rules,
    *MaxAliasesLimiter(max_alias_count=30).validation_rules,
)

schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    types=[Lead, Deal],
    config=StrawberryConfig(disable_field_suggestions=True),
    extensions=[
        lambda: AddValidationRules(list(LIMITS)),
        lambda: ValidationCache(maxsize=256),
        lambda: MaskErrors(should_mask_error=should_mask_error),
    ],
)
