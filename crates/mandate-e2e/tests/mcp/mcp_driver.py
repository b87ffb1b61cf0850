#!/usr/bin/env python3
"""Generic MCP test driver built on the official Python SDK (`mcp` 2.3.0).

Reads ONE JSON scenario on stdin, drives a real MCP client session through it
and prints ONE JSON object on stdout. Everything else (SDK logging, the stdio
server's stderr, driver diagnostics) goes to stderr.

Scenario:
    {"transport": "stdio", "command": "/path/bin", "args": [...], "env": {"K": "V"},
     "steps": [...]}
    {"transport": "http", "url": "http://127.0.0.1:PORT/mcp",
     "headers": {"Authorization": "Bearer ..."}, "steps": [...]}

  Optional keys:
    "cwd":          working directory for the stdio server
    "mode":         "auto" (default; what `mcp.Client` does out of the box: probe
                    `server/discover`, fall back to the `initialize` handshake),
                    "legacy" (send `initialize` straight away), or a modern
                    protocol version string such as "2026-07-28" (no handshake)
    "step_timeout": seconds per step / per request (default 60)

Steps:
    {"op": "list_tools"}
    {"op": "call", "name": "tool", "arguments": {...}}   # arguments optional
    {"op": "sleep", "seconds": 2.5}                       # wait (e.g. for a session to expire)
    {"op": "touch", "path": "/tmp/x"}                     # create a file (tells the test "reached here")

Output:
    {"protocol_version": "...", "server_name": "...", "handshake": "initialize"|"discover"|"adopt",
     "results": [...one entry per step...]}
  list_tools ok: {"ok": true, "tools": [names], "definitions": [{name, description, inputSchema}]}
                 (definitions also carry title / outputSchema / annotations when the server sent them)
  call ok:       {"ok": true, "is_error": bool, "structured": <structuredContent|null>, "text": [str, ...]}
  JSON-RPC err:  {"ok": false, "error": {"code": int, "message": str, "data": any}}
                 (includes SDK-synthesized ones: -32000 connection closed, -32001 request timeout)
  other error:   {"ok": false, "exception": "Type: message"}
  HTTP only: a failed step that saw non-2xx responses also gets "http_status": ["HTTP 401 on POST", ...],
             and a connect_error gets them appended in parentheses.
  after a dead connection: {"ok": false, "skipped": true}
  connect failure: {"connect_error": "Type: message", "results": []}

Exit status: 0 whenever the JSON object was printed; 2 for an unreadable scenario.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from contextlib import AsyncExitStack
from typing import Any

# --- stdout discipline -------------------------------------------------------
# Keep a private handle on the real stdout for the final JSON, then point fd 1
# (and sys.stdout) at stderr so nothing else -- SDK prints, C extensions,
# inherited children -- can ever pollute the machine-readable output.
_RESULT_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

import anyio  # noqa: E402
import httpx2  # noqa: E402
from mcp import Client, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402
from mcp_types import CONNECTION_CLOSED, Implementation  # noqa: E402

DEFAULT_STEP_TIMEOUT = 60.0
# Slack on top of the SDK's own per-request timeout before the driver gives up on a step.
HARD_STEP_SLACK = 10.0
# Allowance for tearing the client down (stdio: close stdin, 2 s, SIGTERM, 2 s, SIGKILL).
TEARDOWN_BUDGET = 15.0
LIST_TOOLS_PAGE_CAP = 100
DRIVER_INFO = Implementation(name="mandate-mcp-driver", version="1.0.0")

_print_lock = threading.Lock()
_printed = False


def log(msg: str) -> None:
    print(f"mcp_driver: {msg}", file=sys.stderr, flush=True)


def emit(obj: dict[str, Any]) -> bool:
    """Print the single result object exactly once (main path or watchdog)."""
    global _printed
    with _print_lock:
        if _printed:
            return False
        _printed = True
        _RESULT_OUT.write(json.dumps(obj, default=str) + "\n")
        _RESULT_OUT.flush()
        return True


def leaf_exception(exc: BaseException) -> BaseException:
    """Unwrap (nested) exception groups from anyio task groups to the first real cause."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        exc = (inner or list(exc.exceptions))[0]
    return exc


def describe(exc: BaseException) -> str:
    exc = leaf_exception(exc)
    msg = str(exc)
    if isinstance(exc, MCPError):
        msg = f"[{exc.code}] {exc.message}"
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def error_entry(exc: BaseException) -> dict[str, Any]:
    exc = leaf_exception(exc)
    if isinstance(exc, MCPError):
        return {"ok": False, "error": {"code": exc.code, "message": exc.message, "data": exc.data}}
    return {"ok": False, "exception": describe(exc)}


def kill_children() -> None:
    """Last-resort cleanup: SIGKILL the process group of every direct child.

    stdio_client starts the server with start_new_session=True, so the child's
    pgid is its pid. Normally the SDK has already stopped it; this only matters
    when the watchdog fires or teardown was abandoned.
    """
    pids: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{os.getpid()}/task"):
            with open(f"/proc/{os.getpid()}/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except OSError:
        return
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# --- scenario ------------------------------------------------------------------


class ScenarioError(ValueError):
    pass


def validate(scn: Any) -> dict[str, Any]:
    if not isinstance(scn, dict):
        raise ScenarioError("scenario must be a JSON object")
    transport = scn.get("transport")
    if transport == "stdio":
        if not isinstance(scn.get("command"), str):
            raise ScenarioError("stdio scenario needs a string 'command'")
        if not isinstance(scn.get("args", []), list):
            raise ScenarioError("'args' must be a list")
        if not isinstance(scn.get("env", {}), dict):
            raise ScenarioError("'env' must be an object")
    elif transport == "http":
        if not isinstance(scn.get("url"), str):
            raise ScenarioError("http scenario needs a string 'url'")
        if not isinstance(scn.get("headers", {}), dict):
            raise ScenarioError("'headers' must be an object")
    else:
        raise ScenarioError("'transport' must be 'stdio' or 'http'")
    steps = scn.get("steps")
    if not isinstance(steps, list):
        raise ScenarioError("'steps' must be a list")
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("op") not in ("list_tools", "call", "sleep", "touch"):
            raise ScenarioError(f"step {i}: 'op' must be 'list_tools', 'call', 'sleep' or 'touch'")
        if step["op"] == "touch" and not isinstance(step.get("path"), str):
            raise ScenarioError(f"step {i}: touch needs a string 'path'")
        if step["op"] == "sleep" and not isinstance(step.get("seconds"), (int, float)):
            raise ScenarioError(f"step {i}: sleep needs numeric 'seconds'")
        if step["op"] == "call":
            if not isinstance(step.get("name"), str):
                raise ScenarioError(f"step {i}: call needs a string 'name'")
            if step.get("arguments") is not None and not isinstance(step["arguments"], dict):
                raise ScenarioError(f"step {i}: 'arguments' must be an object")
    return scn


def step_timeout(scn: dict[str, Any]) -> float:
    return float(scn.get("step_timeout", DEFAULT_STEP_TIMEOUT))


# --- steps -----------------------------------------------------------------------


async def do_list_tools(client: Client) -> dict[str, Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(LIST_TOOLS_PAGE_CAP):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    definitions = []
    for tool in tools:
        raw = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
        d: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "inputSchema": raw.get("inputSchema"),
        }
        for extra in ("title", "outputSchema", "annotations"):
            if extra in raw:
                d[extra] = raw[extra]
        definitions.append(d)
    return {"ok": True, "tools": [t.name for t in tools], "definitions": definitions}


async def do_call(client: Client, step: dict[str, Any], timeout: float) -> dict[str, Any]:
    result = await client.call_tool(step["name"], step.get("arguments"), read_timeout_seconds=timeout)
    texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    return {
        "ok": True,
        "is_error": bool(result.is_error),
        "structured": result.structured_content,
        "text": texts,
    }


def connection_dead(client: Client, exc: BaseException | None) -> bool:
    leaf = leaf_exception(exc) if exc is not None else None
    if isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED:
        return True
    try:
        session = client.session
    except RuntimeError:
        return True
    dispatcher = getattr(session, "_dispatcher", None)
    return bool(getattr(dispatcher, "_closed", False))


# --- main flow ---------------------------------------------------------------------


class State:
    def __init__(self, n: int) -> None:
        self.connected = False
        self.protocol_version: str | None = None
        self.server_name: str | None = None
        self.handshake: str | None = None
        self.results: list[dict[str, Any] | None] = [None] * n
        self.current: int | None = None

    def output(self, connect_error: str | None = None) -> dict[str, Any]:
        if not self.connected:
            return {"connect_error": connect_error or "ConnectError: not connected", "results": []}
        results = [r if r is not None else {"ok": False, "skipped": True} for r in self.results]
        return {
            "protocol_version": self.protocol_version,
            "server_name": self.server_name,
            "handshake": self.handshake,
            "results": results,
        }


class HttpStatusLog:
    """Records non-2xx HTTP statuses. The 2.x streamable-HTTP transport folds a bare
    HTTP error (e.g. 401 with a non-JSON-RPC body) into MCPError(-32603, "Server
    returned an error response"), losing the status; this keeps it visible."""

    def __init__(self) -> None:
        self.statuses: list[str] = []

    async def hook(self, response: Any) -> None:
        if response.status_code >= 400:
            self.statuses.append(f"HTTP {response.status_code} on {response.request.method}")
            log(f"http: {response.status_code} for {response.request.method} {response.request.url}")

    def take(self) -> list[str]:
        out, self.statuses = self.statuses, []
        return out


def make_transport(scn: dict[str, Any], stack: AsyncExitStack, http_log: HttpStatusLog) -> Any:
    if scn["transport"] == "stdio":
        params = StdioServerParameters(
            command=scn["command"],
            args=[str(a) for a in scn.get("args", [])],
            # stdio_client merges this over get_default_environment()
            # (HOME, LOGNAME, PATH, SHELL, TERM, USER).
            env={str(k): str(v) for k, v in scn.get("env", {}).items()},
            cwd=scn.get("cwd"),
        )
        return stdio_client(params, errlog=sys.stderr)
    # 2.x: custom headers/auth go on a caller-owned httpx2.AsyncClient; the
    # transport does not manage (close) a client it was handed.
    http = httpx2.AsyncClient(
        headers={str(k): str(v) for k, v in scn.get("headers", {}).items()},
        timeout=httpx2.Timeout(30.0, read=max(300.0, step_timeout(scn) + 5)),
        event_hooks={"response": [http_log.hook]},
    )
    stack.push_async_callback(http.aclose)
    return streamable_http_client(scn["url"], http_client=http)


async def drive(scn: dict[str, Any], st: State) -> str | None:
    """Run the scenario, filling `st`. Returns a connect error string, if any."""
    timeout = step_timeout(scn)
    hard = timeout + HARD_STEP_SLACK
    steps = scn["steps"]
    connect_error: str | None = None
    dead = False
    http_log = HttpStatusLog()
    try:
        async with AsyncExitStack() as stack:
            client = Client(
                make_transport(scn, stack, http_log),
                mode=scn.get("mode", "auto"),
                read_timeout_seconds=timeout,
                client_info=DRIVER_INFO,
                # Every list_tools step must reach the server (2026-era ttl hints would cache).
                cache=None,
            )
            # No fail_after here: entering the client enters the transport's task group,
            # which must outlive any cancel scope opened around it. Connect is bounded by
            # the SDK's own timeouts (read_timeout_seconds for `initialize`, a short fixed
            # one for the `server/discover` probe, httpx2 connect timeouts) plus the watchdog.
            try:
                await stack.enter_async_context(client)
            except BaseException as exc:
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    raise
                connect_error = describe(exc)
                if statuses := http_log.take():
                    connect_error += f" ({', '.join(dict.fromkeys(statuses))})"
                log(f"connect failed: {connect_error}")
                traceback.print_exception(exc, file=sys.stderr)
                raise
            st.connected = True
            st.protocol_version = client.protocol_version
            info = client.server_info
            st.server_name = info.name if info is not None else None
            sess = client.session
            st.handshake = (
                "initialize"
                if sess.initialize_result is not None
                else ("discover" if scn.get("mode", "auto") == "auto" else "adopt")
            )
            log(f"connected: protocol {st.protocol_version}, server {st.server_name!r}, via {st.handshake}")

            for i, step in enumerate(steps):
                if dead:
                    st.results[i] = {"ok": False, "skipped": True}
                    continue
                st.current = i
                http_log.take()
                failure: BaseException | None = None
                try:
                    with anyio.fail_after(hard):
                        if step["op"] == "touch":
                            with open(step["path"], "a", encoding="utf-8"):
                                pass
                            st.results[i] = {"ok": True, "touched": step["path"]}
                        elif step["op"] == "sleep":
                            await anyio.sleep(float(step["seconds"]))
                            st.results[i] = {"ok": True, "slept": step["seconds"]}
                        elif step["op"] == "list_tools":
                            st.results[i] = await do_list_tools(client)
                        else:
                            st.results[i] = await do_call(client, step, timeout)
                except Exception as exc:  # noqa: BLE001 - everything is reported, nothing escapes
                    failure = exc
                    st.results[i] = error_entry(exc)
                    if statuses := http_log.take():
                        st.results[i]["http_status"] = list(dict.fromkeys(statuses))
                    log(f"step {i} ({step['op']}) failed: {describe(exc)}")
                    if isinstance(exc, TimeoutError):
                        dead = True  # client state unknown after an abandoned request
                st.current = None
                if failure is not None and connection_dead(client, failure):
                    log(f"connection is dead after step {i}; skipping the rest")
                    dead = True
            # Leaving the stack closes the session and transport. The SDK bounds this
            # itself (stdio: close stdin, 2 s, SIGTERM the group, 2 s, SIGKILL); the
            # watchdog covers anything else.
    except Exception as exc:  # noqa: BLE001
        if not st.connected:
            return connect_error or describe(exc)
        # The transport's task group crashed (e.g. HTTP server vanished mid-request)
        # or teardown failed: whatever step was running gets the exception.
        log(f"session aborted: {describe(exc)}")
        traceback.print_exception(exc, file=sys.stderr)
        if st.current is not None and st.results[st.current] is None:
            st.results[st.current] = error_entry(exc)
    return None


def main() -> int:
    try:
        scn = validate(json.loads(sys.stdin.read()))
    except (ValueError, ScenarioError) as exc:
        log(f"bad scenario: {exc}")
        return 2

    st = State(len(scn["steps"]))
    hard = step_timeout(scn) + HARD_STEP_SLACK
    budget = hard * (len(scn["steps"]) + 1) + TEARDOWN_BUDGET + 15

    def watchdog() -> None:
        log(f"watchdog: run exceeded {budget:.0f}s; killing children and exiting")
        if st.connected and st.current is not None and st.results[st.current] is None:
            st.results[st.current] = {"ok": False, "exception": "TimeoutError: driver watchdog fired"}
        kill_children()
        emit(st.output("TimeoutError: driver watchdog fired during connect"))
        os._exit(0)

    timer = threading.Timer(budget, watchdog)
    timer.daemon = True
    timer.start()
    try:
        connect_error = anyio.run(drive, scn, st)
    except BaseException as exc:  # noqa: BLE001 - includes KeyboardInterrupt: still print something
        log(f"driver crashed: {describe(exc)}")
        traceback.print_exception(exc, file=sys.stderr)
        connect_error = None if st.connected else describe(exc)
        if st.connected and st.current is not None and st.results[st.current] is None:
            st.results[st.current] = error_entry(exc)
    finally:
        timer.cancel()
        kill_children()
    emit(st.output(connect_error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
