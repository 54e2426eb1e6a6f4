"""Who is signed in, and the CSRF token of their forms: the pages' view of people's accounts.

The real ones live in api/accounts/sessions.py (users, sessions in the database, HMAC tokens);
pages import them from here under these names.
"""

from __future__ import annotations

from api.accounts.sessions import csrf_ok, csrf_token, session_caller

__all__ = ["csrf_ok", "csrf_token", "session_caller"]
