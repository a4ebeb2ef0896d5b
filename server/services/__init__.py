"""Domain operations every face calls: GraphQL resolvers, admin views and workers."""
