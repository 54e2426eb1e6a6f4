"""The jiuzhu workbench: Chinese web pages for caseworkers, policy staff and administrators, served by `jiuzhu serve`.

Pages are server-rendered (Jinja2) and call the same services as the HTTP API; every script, style and
font comes from ``api/web/static`` (no CDN: county networks are often intranets).
"""
