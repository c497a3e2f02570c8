"""Accounts and sign-in: users and roles (users.py), server-side sessions (sessions.py),
the sign-in throttle (throttle.py) and the OIDC settings (settings.py)."""
