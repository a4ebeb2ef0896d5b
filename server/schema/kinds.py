"""The domain's closed word sets (server/kinds.py) as GraphQL enums, for the fields that output them.

Each enum value is named exactly as the word it stands for (`succeeded`, `after_previous`), not UPPER_CASE:
the JSON a client reads stays the string it read when these fields were `String`. Arguments stay `String`
(an enum argument is written without quotes, which would break every client that sends one today).
"""

import strawberry

from server.kinds import ElementType, Lane, Role, RunStatus, StageRunStatus, StageSemantic

# strawberry.enum marks the class itself (it returns it): the domain enums are the GraphQL ones.
strawberry.enum(RunStatus, description="A rule run's status: scheduled, queued, running, waiting, then final.")
strawberry.enum(StageRunStatus, description="An element's stay in a stage: active, left, or ended by deletion.")
strawberry.enum(ElementType, description="What a pipeline holds.")
strawberry.enum(Role, description="admin configures; manager sees every element; employee sees their own.")
strawberry.enum(Lane, description="How a rule runs relative to the rule above it.")
strawberry.enum(StageSemantic, description="What reaching the stage means for the element.")

__all__ = ["ElementType", "Lane", "Role", "RunStatus", "StageRunStatus", "StageSemantic"]
