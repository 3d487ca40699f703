"""The REST API (FastAPI), served by `jobqueue api` on port 8001."""

from worker.api.app import create_app

__all__ = ["create_app"]
