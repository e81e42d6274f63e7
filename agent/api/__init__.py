"""The Artemis HTTP service: ``create_app(Settings(...))``."""

from agent.api.app import create_app
from agent.api.settings import Settings

__all__ = ["Settings", "create_app"]
