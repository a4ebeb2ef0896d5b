"""The domain's closed word sets (server/kinds.py) as GraphQL enums, for the fields that output them.

Each enum value is named exactly as the word it stands for (`succeeded`, `after_previous`), not UPPER_CASE:
the JSON a client reads stays the string it read when these fields were `String`. Arguments stay `String`
(an enum argument is written without quotes, which would break every client that sends one today).
"""

import strawberry

from server.kinds import (
    Channel, Direction, ElementType, Lane, MessageStatus, Role, RunStatus, StageRunStatus, StageSemantic,
)

# strawberry.enum marks the class itself (it returns it): the domain enums are the GraphQL ones.
strawberry.enum(RunStatus, description="A rule run's status: scheduled, queued, running, waiting, then final.")
strawberry.enum(StageRunStatus, description="An element's stay in a stage: active, left, or ended by deletion.")
strawberry.enum(ElementType, description="What a pipeline holds.")
strawberry.enum(Role, description="admin configures; manager sees every element; employee sees their own.")
strawberry.enum(Lane, description="How a rule runs relative to the rule above it.")
strawberry.enum(StageSemantic, description="What reaching the stage means for the element.")
# customer channels
strawberry.enum(Channel, description="How a message travels: email, sms; inbound also call, chat, form.")
strawberry.enum(Direction, description="outbound: we send it; inbound: the customer's.")
strawberry.enum(MessageStatus, description="An outbound message's delivery (queued, sending, sent, delivered, "
                                           "bounced, failed, suppressed); inbound messages are received.")

__all__ = [
    "Channel", "Direction", "ElementType", "Lane", "MessageStatus", "Role", "RunStatus", "StageRunStatus",
    "StageSemantic",
]
