"""Settings and the rendering of every Asterisk configuration file."""

from huiyan.config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
