"""Keys and auth: API keys, roles and locality scopes."""
