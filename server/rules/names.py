"""Display names for the ids in rule params, so a description says "Maria Becker", not "user 4"."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Names:
    """Display names for the ids in params, so a description says "Maria Becker", not "user 4"."""

    users: dict[int, str] = field(default_factory=dict)
    stages: dict[int, str] = field(default_factory=dict)
    pipelines: dict[int, str] = field(default_factory=dict)

    def user(self, ident: int) -> str:
        return self.users.get(ident, f"user {ident}")

    def people(self, idents: list[int]) -> str:
        names = [self.user(i) for i in idents]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else "nobody"

    def stage(self, ident: int) -> str:
        return f"“{self.stages[ident]}”" if ident in self.stages else f"stage {ident}"

    def pipeline(self, ident: int) -> str:
        return f"“{self.pipelines[ident]}”" if ident in self.pipelines else f"pipeline {ident}"


NO_NAMES = Names()


async def load_names() -> Names:
    """Every user, stage and pipeline name, for describing a board of rules (three statements)."""
    from server.models import Pipeline, Stage, User

    return Names(
        users=dict(await User.all().values_list("id", "name")),
        stages=dict(await Stage.all().values_list("id", "name")),
        pipelines=dict(await Pipeline.all().values_list("id", "name")),
    )
