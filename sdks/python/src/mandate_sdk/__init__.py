"""Python client for the Mandate daemon's REST API (docs/API.md): sync and async
clients on httpx, the error envelope as :class:`MandateError`, idempotency keys on
sends by default, session tokens, agent-key request signing (docs/AGENTS.md), and the
MCP bands as framework tools (``mandate_sdk.tools``; LangChain in
``mandate_sdk.langchain``)."""

from ._routes import NOT_IN_OPENAPI, ROUTES
from .agent import AgentKey, request_digest
from .client import AsyncClient, Client, new_idempotency_key
from .errors import MandateError
from .tools import TOOL_BANDS, MandateTool, mandate_tools

__all__ = [
    "AgentKey",
    "AsyncClient",
    "Client",
    "MandateError",
    "MandateTool",
    "NOT_IN_OPENAPI",
    "ROUTES",
    "TOOL_BANDS",
    "mandate_tools",
    "new_idempotency_key",
    "request_digest",
]
