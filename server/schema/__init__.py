"""GraphQL: types, queries, mutations and the schema object the app mounts."""
