"""The API's types (TypedDicts generated from ``GET /v1/openapi.json``)."""

from ._schema import *  # noqa: F403
from ._schema import API_VERSION, OPERATIONS  # noqa: F401
