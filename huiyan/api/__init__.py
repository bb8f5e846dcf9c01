"""The HTTP API (FastAPI): administration of the directory, sign-in, health, and live events over WebSocket.

Routes are plain `def` functions over a sync SQLAlchemy session, so FastAPI runs them in its threadpool
and the event loop (shared with AMI and FastAGI) never waits on the database.
"""

from huiyan.api.app import create_app

__all__ = ["create_app"]
