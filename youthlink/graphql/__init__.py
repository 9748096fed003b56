"""The GraphQL schema (strawberry). Always imported as `youthlink.graphql`, never run by file path."""
