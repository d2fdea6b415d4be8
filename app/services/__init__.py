"""Services: what the API can do, in domain terms. GraphQL resolvers call exactly one of these."""
