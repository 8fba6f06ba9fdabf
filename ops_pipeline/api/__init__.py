"""REST API: a thin FastAPI adapter over the domain core; `app.create_app` builds it."""
