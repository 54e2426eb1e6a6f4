"""Administering API keys (list, create, revoke) for the HTTP API: plain types, no HTTP."""
