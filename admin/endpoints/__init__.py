"""Admin API endpoints, one module per resource; importing this registers them all."""

from admin.endpoints import health, keys, spend, teams, users  # noqa: F401
from admin.endpoints import alerts  # noqa: F401
from admin.endpoints import ui_data  # noqa: F401
