"""The REST API (FastAPI), served by `jobqueue api` on port 8001; `app.create_app` builds it."""
