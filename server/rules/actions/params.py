"""The one reader of an action's params model: what each field is, for `actionTypes` and the admin form.

A field's kind is its `ParamKind` marker if it has one (found through `Optional` and `Annotated`
wrappers too), else its plain type: bool, int, string, choice (a `Literal` or an enum), list, or map (a dict,
or anything else, entered as JSON).
"""

import sys
import types
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from server.models import Pipeline, Stage, User
from server.rules import documents
from server.rules.actions.base import Action, ParamKind


@dataclass(frozen=True)
class ParamSpec:
    name: str
    label: str
    kind: str  # template user users stage pipeline roles field_map mail_sender document_template bool int string choice list map
    required: bool
    default: Any
    choices: list[str] = field(default_factory=list)  # a choice's values, or the roles to pick from
    item_kind: str | None = None  # a list's items: int, string, choice…
    help: str | None = None  # the field's `description`, if the params model gives one


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The annotation without Optional and Annotated, and the Annotated metadata found on the way."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            metadata += list(annotation.__metadata__)
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation, metadata
            annotation = rest[0]
        else:
            return annotation, metadata


def _plain_kind(annotation: Any) -> str:
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is str:
        return "string"
    origin = get_origin(annotation)
    if origin is Literal or _is_enum(annotation):
        return "choice"
    if origin is list:
        return "list"
    return "map"


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Enum)


def _literal_values(annotation: Any) -> list[str]:
    """A choice's values: of a `Literal`, or of an enum (server/kinds.py), as the strings the params hold."""
    inner, _ = _unwrap(annotation)
    if _is_enum(inner):
        return [str(member.value) for member in inner]
    return [str(a) for a in get_args(inner)] if get_origin(inner) is Literal else []


def describe_param(name: str, info: FieldInfo) -> ParamSpec:
    annotation, metadata = _unwrap(info.annotation)
    markers = [m.name for m in [*info.metadata, *metadata] if isinstance(m, ParamKind)]
    kind = markers[0] if markers else _plain_kind(annotation)
    choices = _literal_values(annotation)
    item_kind = None
    if get_origin(annotation) is list and get_args(annotation):
        item = get_args(annotation)[0]
        item_kind = _plain_kind(_unwrap(item)[0])
        choices = choices or _literal_values(item)  # roles: list[Role]
    required = info.is_required()
    return ParamSpec(
        name=name, label=name.replace("_", " ").capitalize(), kind=kind, required=required,
        default=None if required else info.get_default(call_default_factory=True),
        choices=choices, item_kind=item_kind, help=info.description,
    )


def describe_params(model: type[BaseModel]) -> list[ParamSpec]:
    """Every field of a params model (or a trigger type's settings model), in declaration order."""
    return [describe_param(name, info) for name, info in model.model_fields.items()]


async def example_params(action: Action[Any], *, pipeline_id: int) -> dict[str, Any]:
    """The action's example params with the people, stages and pipelines it names (see `Example`) as ids
    of this database; `pipeline_id` is the pipeline of the stage the example rule goes on."""
    params = dict(action.example.params)
    for spec in describe_params(action.Params):
        value = params.get(spec.name)
        if value is None:
            continue
        if spec.kind == "user":
            params[spec.name] = await _user_with_role(action, value)
        elif spec.kind == "users":
            params[spec.name] = [await _user_with_role(action, role) for role in value]
        elif spec.kind == "stage":
            stage = await Stage.filter(pipeline_id=pipeline_id, semantic=value).order_by("position", "id").first()
            if stage is None:
                raise LookupError(f"the example of {action.key} moves to a {value} stage: its pipeline has none")
            params[spec.name] = stage.id
        elif spec.kind == "pipeline":
            pipeline = await Pipeline.filter(entity_type=value).order_by("-is_default", "position", "id").first()
            if pipeline is None:
                raise LookupError(f"the example of {action.key} names a {value} pipeline: there is none")
            params[spec.name] = pipeline.id
        elif spec.kind == "document_template":  # named: the one of that name, made with a plain body if missing
            params[spec.name] = (await documents.example_template(value, action.example.entity_type)).id
    return await action.prepare_example(params, entity_type=action.example.entity_type)


async def _user_with_role(action: Action[Any], role: str) -> int:
    user = await User.filter(role=role, active=True).order_by("id").first()
    if user is None:
        raise LookupError(f"the example of {action.key} names a {role}: there is no active {role}")
    return user.id


KIND_KEY = "x-pipewright-kind"  # the widget kind of `describe_param` on each property of a params JSON Schema


def params_schema(action: Action[Any]) -> dict[str, Any]:
    """The action's params as JSON Schema (draft 2020-12, from the params model): titles, descriptions, enums,
    defaults and limits, and on each property its kind (`x-pipewright-kind`: user, stage, template, …) that says
    what an integer or string stands for."""
    schema = action.Params.model_json_schema()
    schema["title"] = action.title
    about = type(action).__doc__ or sys.modules[type(action).__module__].__doc__  # the action module's first lines
    if about:  # the action's words, not those of a params model several actions share
        schema["description"] = " ".join(about.strip().split("\n\n")[0].split())
    properties = schema.get("properties", {})
    for spec in describe_params(action.Params):
        shown = properties[spec.name]
        shown["title"] = spec.label
        shown[KIND_KEY] = spec.kind
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
