"""Bounded answers: every list that grows is bounded by a `first`/`last` argument (or a connection)
and costed by that size; refusals list at most 50 field errors; big inputs are refused early;
feed posts have length limits."""

import json
from typing import Any

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, get_named_type

from server.models import FeedPost, TimelineEntry
from server.schema.limits import BOUNDED_LISTS, CONFIGURATION_LISTS, SIZE_ARGUMENTS
from server.schema.schema import schema
from tests.support.api import answer, api, data, refused_fields
from tests.support import make_pipeline, make_token

CREATE_DEAL = 'mutation { createDeal(input: {title: "Long history"}) { ... on Deal { id } } }'


async def deal_with_history(client: Any, entries: int) -> str:
    deal_id = (await data(client, CREATE_DEAL))["createDeal"]["id"]
    await TimelineEntry.bulk_create([
        TimelineEntry(element_type="deal", element_id=int(deal_id), kind="comment", text=f"entry {n} " + "x" * 200)
        for n in range(entries)
    ])
    return deal_id


async def test_thirty_aliases_of_a_long_timeline_get_at_most_a_page_each(db: Any) -> None:
    await make_pipeline()
    _, token = await make_token("admin")
    async with api(token) as client:
        deal_id = await deal_with_history(client, 250)
        # The probe: each entry's text may hold a 64 KiB rendered comment, so 30 × 100 of them is refused
        # before anything is read, whatever the entries hold today.
        aliases = " ".join(f"t{n}: timeline {{ id text }}" for n in range(30))
        body = await answer(client, f'{{ deal(id: "{deal_id}") {{ ... on Deal {{ {aliases} }} }} }}')
        assert body["errors"][0]["message"].startswith("query cost "), body.get("errors")
        assert "data" not in body or body["data"] is None
        # Small fields of the same thirty lists are fine: each is at most a page.
        aliases = " ".join(f"t{n}: timeline {{ id kind }}" for n in range(30))
        body = await answer(client, f'{{ deal(id: "{deal_id}") {{ ... on Deal {{ {aliases} }} }} }}')
        timelines = body["data"]["deal"]
        assert {len(entries) for entries in timelines.values()} == {100}
        print(f"\n30 aliases of a 250-entry timeline (id, kind): {len(json.dumps(body)) / 1e6:.2f} MB")
        newest = await data(client, f'{{ deal(id: "{deal_id}") {{ ... on Deal {{ timeline {{ text }} }} }} }}')
        assert newest["deal"]["timeline"][-1]["text"].startswith("entry 249 ")  # the newest, in order

        latest = await data(client, f'{{ deal(id: "{deal_id}") {{ ... on Deal {{ timeline(last: 3) {{ text }} }} }} }}')
        assert [e["text"][:9] for e in latest["deal"]["timeline"]] == ["entry 247", "entry 248", "entry 249"]
        too_many = await answer(client, f'{{ deal(id: "{deal_id}") {{ ... on Deal {{ timeline(last: 101) {{ id }} }} }} }}')
        assert too_many["errors"][0]["message"] == "last: must be between 1 and 100"

        # The whole history stays readable, a page at a time.
        read: list[str] = []
        after = None
        while True:
            page = (await data(client, "query($id: ID!, $after: ID) { timeline(elementType: \"deal\", elementId: $id, "
                                       "after: $after) { id text } }", id=deal_id, after=after))["timeline"]
            if not page:
                break
            read += [e["text"].split(" x")[0] for e in page]
            after = page[-1]["id"]
        assert read == [f"entry {n}" for n in range(250)]


async def test_a_list_is_costed_by_the_size_it_can_really_have(db: Any) -> None:
    _, token = await make_token("admin")
    async with api(token) as client:
        body = await answer(client, "{ deals(first: 100) { nodes { timeline { id kind createdAt } } } }")
        assert body["errors"][0]["message"].startswith("query cost 30")  # 100 deals × 100 entries × 3 fields
        small = await answer(client, "{ deals(first: 100) { nodes { timeline(last: 5) { id kind createdAt } } } }")
        assert "errors" not in small, small
        # A field that can hold a long text counts by its size (about a kilobyte a unit): 100 × 5 × 64.
        texts = await answer(client, "{ deals(first: 100) { nodes { timeline(last: 5) { text } } } }")
        assert texts["errors"][0]["message"].startswith("query cost 32")
        few = await answer(client, "{ deals(first: 20) { nodes { timeline(last: 5) { text } } } }")
        assert "errors" not in few, few


def test_every_list_of_objects_in_the_schema_is_bounded() -> None:
    unbounded = []
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__") or type_.name.endswith("Connection"):
            continue
        for name, field in type_.fields.items():
            field_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if not isinstance(field_type, GraphQLList) or not isinstance(get_named_type(field_type), GraphQLObjectType):
                continue
            if any(a in field.args for a in SIZE_ARGUMENTS):
                continue
            if f"{type_.name}.{name}" in CONFIGURATION_LISTS | set(BOUNDED_LISTS):
                continue
            unbounded.append(f"{type_.name}.{name}")
    assert unbounded == []


async def test_ten_thousand_bad_fields_are_refused_early_and_refusals_list_fifty(db: Any) -> None:
    await make_pipeline()
    _, token = await make_token("admin")
    update = """mutation($id: ID!, $fields: JSON!) { updateDeal(id: $id, fields: $fields) {
        ... on ValidationError { message errorCount errors { field message } } } }"""
    async with api(token) as client:
        deal_id = (await data(client, CREATE_DEAL))["createDeal"]["id"]
        response = await client.post("/graphql", json={"query": update, "variables": {
            "id": deal_id, "fields": {f"f{n}": "x" for n in range(10_000)}}})
        assert len(response.content) < 1_000, len(response.content)
        refused = response.json()["data"]["updateDeal"]
        assert refused["errors"] == [{"field": "fields", "message": "at most 200 fields at once, not 10000"}]

        many = (await data(client, update, id=deal_id, fields={f"f{n}": "x" for n in range(150)}))["updateDeal"]
        assert many["errorCount"] == 150 and len(many["errors"]) == 50
        assert many["errors"][0] == {"field": "fields.f0", "message": "deal has no field 'f0'"}
        assert many["message"].endswith("; and 100 more")


async def test_feed_posts_have_length_limits(db: Any) -> None:
    _, token = await make_token("admin")
    post = """mutation($title: String!, $body: String!) { postToFeed(title: $title, body: $body, everyone: true) {
        __typename ... on ValidationError { errors { field message } } } }"""
    async with api(token) as client:
        too_long = (await data(client, post, title="t" * 256, body="b" * 20_001))["postToFeed"]
        assert refused_fields(too_long) == {"title": "must be at most 255 characters",
                                            "body": "must be at most 20000 characters"}
        assert (await data(client, post, title="t" * 255, body="b" * 20_000))["postToFeed"]["__typename"] == "FeedPost"
        comment = """mutation($id: ID!, $text: String!) { addComment(elementType: "deal", elementId: $id, text: $text) {
            __typename ... on ValidationError { errors { field message } } } }"""
        await make_pipeline()
        deal_id = (await data(client, CREATE_DEAL))["createDeal"]["id"]
        refused = (await data(client, comment, id=deal_id, text="c" * 20_001))["addComment"]
        assert refused_fields(refused) == {"text": "must be at most 20000 characters"}
    assert [len(p.title) for p in await FeedPost.all()] == [255]
