"""LangChain tools (``pip install mandate-sdk[langchain]``): the tools of
:func:`mandate_sdk.tools.mandate_tools` as ``langchain_core`` ``BaseTool`` objects, in the
bands of the MCP server. Their ``args_schema`` is the tool's JSON schema; a refusal is
returned to the model as the error envelope."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool

from .client import AsyncClient
from .tools import MandateTool, mandate_tools


class MandateLangChainTool(BaseTool):
    """One Mandate tool. Sync calls need a :class:`~mandate_sdk.Client`, async calls
    (``ainvoke``) an :class:`~mandate_sdk.AsyncClient`."""

    mandate_tool: Any = None

    def _run(self, **kwargs: Any) -> Any:
        kwargs.pop("run_manager", None)
        tool: MandateTool = self.mandate_tool
        if isinstance(tool._client, AsyncClient):
            raise TypeError("this tool holds an AsyncClient: call it with ainvoke")
        return tool.run(kwargs)

    async def _arun(self, **kwargs: Any) -> Any:
        kwargs.pop("run_manager", None)
        tool: MandateTool = self.mandate_tool
        if not isinstance(tool._client, AsyncClient):
            return tool.run(kwargs)
        return await tool.arun(kwargs)


def langchain_tools(client: Any, *, band: str = "read", freeze: bool = False, wallet: str | None = None) -> list[MandateLangChainTool]:
    """The band's tools as LangChain ``BaseTool`` objects."""
    return [
        MandateLangChainTool(name=t.name, description=t.description, args_schema=t.parameters, mandate_tool=t)
        for t in mandate_tools(client, band=band, freeze=freeze, wallet=wallet)
    ]
