"""Admin API endpoints, one module per resource; importing this registers them all."""

from admin.endpoints import health  # noqa: F401
