"""schema.graphql at the repository root is what the code serves."""

from server.schema.export import DEFAULT, sdl


def test_schema_graphql_matches_the_code() -> None:
    assert DEFAULT.exists(), "schema.graphql is missing: run python -m server.schema.export"
    assert DEFAULT.read_text() == sdl(), (
        "schema.graphql is out of date with the code: run `python -m server.schema.export` and commit it"
    )
