"""Every action type's params as JSON Schema (`actionTypes { paramsSchema }`): a client can build a form and
check params before sending them, and the schema explains each field."""

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from server.models import Stage
from server.rules.actions import registry
from server.rules.actions.params import KIND_KEY, describe_params, example_params, params_schema
from tests.rules.test_action_contract import world
from tests.support.api import Api
from tests.support import make_token


def validator(key: str) -> Draft202012Validator:
    schema = params_schema(registry()[key])
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.mark.parametrize("key", sorted(registry()))
async def test_the_schema_of_every_action_accepts_its_own_example(db: Any, key: str) -> None:
    action = registry()[key]
    pipelines = await world()
    pipeline = pipelines[action.example.entity_type]
    await Stage.create(pipeline_id=pipeline.id, code="schema", name="Schema", position=9)
    params = await example_params(action, pipeline_id=pipeline.id)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator(key).iter_errors(params)]
    assert errors == []


@pytest.mark.parametrize("key", sorted(registry()))
def test_the_schema_of_every_action_explains_each_field(key: str) -> None:
    action = registry()[key]
    schema = params_schema(action)
    assert schema["title"] == action.title and schema["description"].strip()
    kinds = {spec.name: spec.kind for spec in describe_params(action.Params)}
    assert set(schema["properties"]) == set(kinds)
    for name, shown in schema["properties"].items():
        assert shown.get("description", "").strip(), f"{key}.{name} has no description"
        assert shown["title"].strip() and shown[KIND_KEY] == kinds[name]


def test_the_schema_names_what_an_id_stands_for_and_lists_choices_and_defaults() -> None:
    task = params_schema(registry()["task"])["properties"]
    assert (task["responsible"][KIND_KEY], task["participants"][KIND_KEY], task["title"][KIND_KEY]) == (
        "user", "users", "template")
    assert task["priority"]["enum"] == ["low", "normal", "high"] and task["priority"]["default"] == "normal"
    assert params_schema(registry()["change_stage"])["properties"]["stage"][KIND_KEY] == "stage"
    assert params_schema(registry()["change_stage"])["required"] == ["stage"]


def test_the_schema_refuses_what_the_params_model_refuses() -> None:
    code = validator("generate_code")
    assert code.is_valid({"length": 8, "digits": True})
    assert not code.is_valid({"length": 2})  # at least 4 characters
    assert not code.is_valid({"lenght": 8})  # unknown fields are refused (extra="forbid")
    assert not validator("task").is_valid({"title": "Call back", "priority": "urgent"})
    assert not validator("task").is_valid({"priority": "low"})  # the title is required


async def test_action_types_answer_the_params_schema(api: Api) -> None:
    _, token = await make_token("employee")
    data = await api.as_(token, "{ actionTypes { key paramsSchema } }")
    shown = {a["key"]: a["paramsSchema"] for a in data["actionTypes"]}
    assert shown.keys() == registry().keys()
    assert shown["send_email"] == params_schema(registry()["send_email"])
