"""People's accounts: users with a role and a locality scope, their sign-in sessions, and the
throttle on failed sign-ins. API keys (api/auth/keys.py) stay for machines; these are for people."""
