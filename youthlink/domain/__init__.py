"""Business rules: plain async functions over a session, shared by the API and the workers."""
