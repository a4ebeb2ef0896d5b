"""What every action is: a typed params model, declared outputs, an effect, and a description.

An action module declares all the rest of the system needs to know about it: its group in the
catalogue, its outputs, the events that end its wait, and an example rule (for the demo data and
the contract test). Params fields carry a `ParamKind` marker in their `Annotated` metadata; the
engine renders `template` fields before `execute`, and the API and admin derive widgets from
the markers (`params.describe_params`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from server.i18n import N_
from server.kinds import Role
from server.rules import templates
# re-exported: actions import them from here
from server.rules.names import NO_NAMES as NO_NAMES, Names as Names, load_names as load_names

if TYPE_CHECKING:
    from server.rules.context import RunContext
    from server.rules.preview import PreviewContext


@dataclass(frozen=True)
class ParamKind:
    name: str


TEMPLATE = ParamKind("template")
USER = ParamKind("user")
USERS = ParamKind("users")
STAGE = ParamKind("stage")
PIPELINE = ParamKind("pipeline")
ROLES = ParamKind("roles")
FIELD_MAP = ParamKind("field_map")
MAIL_SENDER = ParamKind("mail_sender")  # a configured sender address (MailSender id)
DOCUMENT_TEMPLATE = ParamKind("document_template")  # a DocumentTemplate id


def _valid_template(text: str) -> str:
    templates.check(text)
    return text


Template = Annotated[str, TEMPLATE, AfterValidator(_valid_template)]
UserId = Annotated[int, USER]
UserIds = Annotated[list[int], USERS]
StageId = Annotated[int, STAGE]
PipelineId = Annotated[int, PIPELINE]
Roles = Annotated[list[Role], ROLES]
MailSenderId = Annotated[int, MAIL_SENDER]
DocumentTemplateId = Annotated[int, DOCUMENT_TEMPLATE]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)  # a field's docstring is its description


class FieldMapParams(Params):
    """Modify element, Change company, Change contact: field → value (templates allowed), on whose behalf."""

    fields: Annotated[dict[str, Any], FIELD_MAP] = Field(min_length=1)
    """field name to the value it gets (templates allowed)"""
    run_as: UserId | None = None
    """on whose behalf the change is made (the audit trail names them); empty: the rule's run-as user"""


@dataclass
class Done:
    """The action finished; `outputs` become `{{rules.<key>.<name>}}` for later rules."""

    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Block:
    """The action holds its lane until released (customer activity, task closed) or `until`."""

    until: datetime | None
    reason: str
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skipped:
    """The action decided not to act (the address is suppressed): the run is skipped with `reason`."""

    reason: str
    outputs: dict[str, Any] = field(default_factory=dict)


Outcome = Done | Block | Skipped

# The catalogue's groups, in the order the designer shows them: group → heading.
GROUPS = {
    "communication": N_("Communication"),
    "tasks": N_("Tasks and activities"),
    "element": N_("Element changes"),
    "documents": N_("Documents"),
    "control": N_("Control"),
}

# Events that end a blocking action's wait, when the action lists them in `released_by`.
CUSTOMER_ACTIVITY = "customer_activity"  # a call, email or visit of the customer recorded on the element
RELEASE_EVENTS = (CUSTOMER_ACTIVITY,)


@dataclass(frozen=True)
class Example:
    """A rule that shows the action at work: the demo seeds it on the default pipeline of `entity_type`
    when no hand-written demo rule uses the action, and the contract test runs it through the engine.

    Params name things instead of numbering them, so the example fits any database: a `user` param
    names a role ("manager"), `users` a list of roles, a `stage` a stage semantic of the rule's
    pipeline ("success", "failure"), a `pipeline` an entity type ("deal"). `params.example_params`
    turns the names into ids.
    """

    title: str
    params: dict[str, Any] = field(default_factory=dict)
    entity_type: str = "deal"


P = TypeVar("P", bound=Params)


class Action(Generic[P]):
    """One kind of rule step, generic over its params model `P`: the engine validates the rule's params
    with `Params` and hands `execute`, `release`, `check` and `describe` that model, never a bare dict."""

    key: ClassVar[str]
    title: ClassVar[str]
    group: ClassVar[str]  # a key of GROUPS
    summary: ClassVar[str] = ""  # one line for the catalogue: what a rule with this action does
    gives: ClassVar[str] = ""  # its outputs in words ("the task, when it was closed…"), for the catalogue
    Params: type[P]  # set on the class; not a ClassVar because a ClassVar cannot name a type variable
    outputs: ClassVar[tuple[str, ...]] = ()  # every key execute (and release, for a blocking action) may return
    released_by: ClassVar[tuple[str, ...]] = ()  # RELEASE_EVENTS that end this action's wait
    example: ClassVar[Example]
    hinted_params: ClassVar[tuple[str, ...]] = ()  # params the rule form annotates live (`param_hints`)
    # Its effects are rows in this database and take milliseconds (no outside call, no wait): an immediate run
    # starts, acts and finishes in one transaction, without a running lease (engine.execute).
    database_only: ClassVar[bool] = False

    async def check(self, params: P, *, stage_id: int) -> list[tuple[str, str]]:
        """Checks that need the database (a user exists, a stage is in the pipeline): (field, message)."""
        return []

    async def execute(self, ctx: "RunContext", params: P) -> Outcome:
        raise NotImplementedError

    async def release(self, ctx: "RunContext", params: P, *, ended_by: str) -> dict[str, Any]:
        """A blocking action's outputs when its wait ends (by an event or by timeout)."""
        return {"ended_by": ended_by}

    async def prepare_example(self, params: dict[str, Any], *, entity_type: str) -> dict[str, Any]:
        """The example's params with what only this action names (a bookable resource, a booking field) found or
        made in this database, by the names the example gives. Most actions name nothing of their own."""
        return params

    def describe(self, params: P, names: Names = NO_NAMES) -> str:
        """What the rule does, in words, for the designer and the run log."""
        return self.title

    async def simulate(self, ctx: "PreviewContext", params: P) -> str:
        """What `execute` would do now, in words, from params already rendered against the element (a dry run).
        The context reads only; an action whose effect depends on what it would find (recipients, due dates,
        stages) says so here. A problem the run would fail with is an `ActionError`, as in `execute`."""
        return self.describe(params, ctx.names)

    def param_hints(self, params: dict[str, Any]) -> dict[str, str]:
        """Notes the rule form shows under `hinted_params` as the admin types (the SMS segment count), from the
        values as typed, not validated."""
        return {}


async def unknown_users(**user_ids: int | list[int] | None) -> list[tuple[str, str]]:
    """(field, message) for each named user id (or list of ids) that does not exist."""
    from server.models import User

    problems = []
    for name, value in user_ids.items():
        ids: Sequence[int | None] = value if isinstance(value, list) else (value,)
        for index, ident in enumerate(ids):
            if ident is not None and not await User.exists(id=ident):
                field = f"{name}.{index}" if isinstance(value, list) else name
                problems.append((field, f"user {ident} does not exist"))
    return problems


async def stage_entity_type(stage_id: int) -> str:
    """lead or deal: what the elements of the rule's stage are."""
    from server.models import Stage

    stage = await Stage.get(id=stage_id).prefetch_related("pipeline")
    return stage.pipeline.entity_type


async def field_map_problems(
    fields: dict[str, Any], types: dict[str, tuple[str, list[Any]]], coerce: Any, *, owner: str, required: str
) -> list[tuple[str, str]]:
    """(field, message) for a field map (Modify element, Change company/contact): unknown fields,
    broken templates, an empty `required` field, values of the wrong type. Templates are checked
    for syntax here (their value is known when the rule runs); the rule service checks their names."""
    problems: list[tuple[str, str]] = []
    for name, value in fields.items():
        if name not in types:
            problems.append((f"fields.{name}", f"{owner} has no field '{name}'"))
        elif isinstance(value, str) and "{" in value:
            try:
                templates.check(value)
            except ValueError as exc:
                problems.append((f"fields.{name}", str(exc)))
        elif name == required and not str(value or "").strip():
            problems.append((f"fields.{name}", "must not be empty"))
        else:
            try:
                await coerce(*types[name], value)
            except ValueError as exc:
                problems.append((f"fields.{name}", str(exc)))
    return problems


def template_texts(params: Params) -> list[tuple[str, str]]:
    """(field, text) of every template in a rule's params: template fields and templated field-map values,
    for the checks that need the stage (names of the element's fields and of the rules above)."""
    texts: list[tuple[str, str]] = []
    for name, info in type(params).model_fields.items():
        value = getattr(params, name)
        if TEMPLATE in info.metadata and isinstance(value, str) and "{" in value:
            texts.append((name, value))
        elif FIELD_MAP in info.metadata and isinstance(value, dict):
            texts += [(f"{name}.{key}", v) for key, v in value.items() if isinstance(v, str) and "{" in v]
    return texts
