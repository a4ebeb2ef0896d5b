"""Configuration through the API, for admins: users, pipelines and stages. The services check the role."""

from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from server.errors import ValidationFailed
from server.schema.context import actor_of
from server.schema.errors import ForbiddenError, NotFoundError, ValidationError, result_of
from server.schema.ids import opt_int, to_int
from server.schema.types import Pipeline, Stage, User
from server.services import pipelines as pipeline_service
from server.services import users as user_service

UserResult = Annotated[User | ValidationError | NotFoundError | ForbiddenError, strawberry.union("UserResult")]
PipelineResult = Annotated[
    Pipeline | ValidationError | NotFoundError | ForbiddenError, strawberry.union("PipelineResult")
]
StageResult = Annotated[Stage | ValidationError | NotFoundError | ForbiddenError, strawberry.union("StageResult")]


@strawberry.type
class StageList:
    stages: list[Stage]


StagesResult = Annotated[StageList | ValidationError | NotFoundError | ForbiddenError, strawberry.union("StagesResult")]


@strawberry.input
class UserInput:
    """Fields left out keep their value on update. Working hours: {"days": [0..6], "start": "09:00", "end": "18:00"}."""

    email: str | None = None
    name: str | None = None
    role: str | None = None
    supervisor_id: strawberry.ID | None = None
    clear_supervisor: bool = False
    timezone: str | None = None
    locale: str | None = strawberry.field(default=None, description='The admin\'s language: "en" or "de"; "" for the instance default.')
    working_hours: JSON | None = None
    absent: bool | None = None
    active: bool | None = None
    password: str | None = None

    def to_service(self) -> user_service.UserInput:
        if self.working_hours is not None and not isinstance(self.working_hours, dict):
            raise ValidationFailed.one("working_hours", "must be an object with days, start and end")
        return user_service.UserInput(
            email=self.email, name=self.name, role=self.role,
            supervisor_id=opt_int(self.supervisor_id, "supervisor_id"), clear_supervisor=self.clear_supervisor,
            timezone=self.timezone, locale=self.locale, working_hours=self.working_hours, absent=self.absent, active=self.active,
            password=self.password,
        )


@strawberry.type
class AdminMutation:
    @strawberry.mutation(description="Admins only.")
    async def create_user(self, info: Info, input: UserInput) -> UserResult:
        actor = actor_of(info)
        return await result_of(lambda: user_service.create_user(input.to_service(), actor=actor), User.of)

    @strawberry.mutation(description="Admins only. Deactivating a user ends their sessions and API access.")
    async def update_user(self, info: Info, id: strawberry.ID, input: UserInput) -> UserResult:
        actor = actor_of(info)
        return await result_of(
            lambda: user_service.update_user(to_int(id, "id"), input.to_service(), actor=actor), User.of
        )

    @strawberry.mutation(description="Admins only. entityType: lead or deal.")
    async def create_pipeline(self, info: Info, name: str, entity_type: str) -> PipelineResult:
        actor = actor_of(info)
        return await result_of(lambda: pipeline_service.create_pipeline(name, entity_type, actor=actor), Pipeline.of)

    @strawberry.mutation(description="Admins only.")
    async def rename_pipeline(self, info: Info, id: strawberry.ID, name: str) -> PipelineResult:
        actor = actor_of(info)
        return await result_of(lambda: pipeline_service.rename_pipeline(to_int(id, "id"), name, actor=actor),
                               Pipeline.of)

    @strawberry.mutation(description="Admins only. A new stage at the end; semantic: in_progress, success or failure.")
    async def create_stage(self, info: Info, pipeline_id: strawberry.ID, name: str,
                           semantic: str = "in_progress") -> StageResult:
        actor = actor_of(info)
        return await result_of(
            lambda: pipeline_service.create_stage(to_int(pipeline_id, "pipeline_id"), name, semantic=semantic,
                                                  actor=actor),
            Stage.of,
        )

    @strawberry.mutation(description="Admins only. Rename a stage or change its semantic.")
    async def update_stage(self, info: Info, id: strawberry.ID, name: str | None = None,
                           semantic: str | None = None) -> StageResult:
        actor = actor_of(info)
        return await result_of(
            lambda: pipeline_service.update_stage(to_int(id, "id"), name=name, semantic=semantic, actor=actor),
            Stage.of,
        )

    @strawberry.mutation(description="Admins only. The list must name every stage of the pipeline once.")
    async def reorder_stages(self, info: Info, pipeline_id: strawberry.ID, stage_ids: list[strawberry.ID]) -> StagesResult:
        actor = actor_of(info)

        async def reorder() -> StageList:
            stages = await pipeline_service.reorder_stages(
                to_int(pipeline_id, "pipeline_id"), [to_int(i, "stage_ids") for i in stage_ids], actor=actor)
            return StageList(stages=[Stage.of(s) for s in stages])

        return await result_of(reorder)
