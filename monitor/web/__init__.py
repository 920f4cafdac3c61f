"""The analyst's web app: read the digest, label items, measure and tune the rules.

Server-rendered pages (Starlette + Jinja2, autoescaped) over the same
database and rule files as the CLI. `monitor.web.app.create_app` builds the
ASGI app; `monitor.web.server` runs it with uvicorn and refuses unsafe
binds. A day's items come through `monitor.web.data` only, so the digest's
selection and ranking stay defined in one place.
"""
