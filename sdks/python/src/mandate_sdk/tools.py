"""The wallet tools an agent framework hands a model, in the bands of the MCP server
(docs/MCP.md): ``read`` ⊂ ``prepare`` ⊂ ``sign`` ⊂ ``broadcast``, plus ``freeze_wallet``
for a session granted ``freeze``. Framework-neutral: a name, a description, a JSON
schema and a ``run``; ``mandate_sdk.langchain`` wraps them as LangChain tools.

As in MCP, the tools hold no authority: each is one REST call with the client's own
credential, and the daemon enforces the scopes and the policy. A refusal is returned as
the error envelope ``{"error": {...}}`` (what the model should read), not raised; send,
speed-up and cancel need ``confirm: true``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .errors import MandateError

BANDS = ("read", "prepare", "sign", "broadcast")

ADDRESS = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "description": "an EVM address (EIP-55 or lower case)"}
AMOUNT = {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "description": 'whole units, e.g. "0.25" ether or token'}
TOKEN = {
    "type": "string",
    "pattern": "^[A-Za-z0-9._-]{1,64}$",
    "description": "a symbol the wallet's policy declares, or the token's contract address; omit for the native asset",
}
TX_ID = {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$", "description": "a transaction id (tx_…)"}
CONFIRM = {"type": "boolean", "const": True, "description": "must be true: this signs and sends"}
IDEMPOTENCY = {
    "type": "string",
    "pattern": "^[\\x21-\\x7e]{1,128}$",
    "description": "retry an unknown outcome with the same key: it never sends twice",
}
CALL_FIELDS = {
    "to": ADDRESS,
    "data": {"type": "string", "pattern": "^0x([0-9a-fA-F]{2})+$", "description": "calldata (or give function and args)"},
    "function": {"type": "string", "description": "a signature such as swap(address,uint256,uint256)"},
    "args": {"type": "array", "description": "the arguments: strings or JSON values"},
    "value": {**AMOUNT, "description": "ether sent with the call, default 0"},
}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _pick(args: dict[str, Any], names: Any) -> dict[str, Any]:
    return {name: args[name] for name in names if args.get(name) is not None}


def _need_confirm(args: dict[str, Any]) -> None:
    if args.get("confirm") is not True:
        raise MandateError(
            0, "CONFIRMATION_REQUIRED", "validation", "this tool signs: call it again with confirm: true once the action is checked",
            required_action="check the action (a prepare_* tool), then call again with confirm: true",
        )


def _freeze_reason(args: dict[str, Any]) -> str:
    reason = args.get("reason")
    if not isinstance(reason, str):
        return "frozen by the agent"
    return re.sub(r"[\x00-\x1f\x7f]", " ", reason)[:400]


# name: (band, description, schema, call(client, wallet, args) -> answer or awaitable)
_Call = Callable[[Any, str, dict[str, Any]], Any]
SPECS: dict[str, tuple[str, str, dict[str, Any], _Call]] = {
    "get_wallet": (
        "read", "The wallet: id, name, address, chain id, creation time and 'frozen' (null, or the freeze).",
        _object({}), lambda c, w, a: c.get_wallet(w),
    ),
    "get_balance": (
        "read", "The wallet's balance read from the chain, native or one ERC-20.",
        _object({"token": TOKEN}), lambda c, w, a: c.get_balance(w, token=a.get("token")),
    ),
    "list_transactions": (
        "read", "The wallet's transactions, newest first.",
        _object({"limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "default 20"}}),
        lambda c, w, a: c.list_transactions(w, limit=a.get("limit", 20)),
    ),
    "get_transaction": (
        "read", "One transaction by id. Poll it after a send.",
        _object({"id": TX_ID}, ("id",)), lambda c, w, a: c.get_transaction(a["id"]),
    ),
    "get_policy_summary": (
        "read", "The policy's rules and, for every rolling window and velocity rule, the budget now.",
        _object({}), lambda c, w, a: c.get_policy_summary(w),
    ),
    "evaluate_action": (
        "read",
        "A dry run: the full policy decision for a transfer, a contract call or a signature. Nothing is signed, reserved or audited.",
        _object(
            {
                "type": {"type": "string", "enum": ["transfer", "contract_call", "sign"]},
                **CALL_FIELDS,
                "amount": AMOUNT,
                "token": TOKEN,
                "typed_data": {"type": "object", "description": "EIP-712 typed data (type sign)"},
                "message": {"type": "string", "description": "a personal message (type sign)"},
            },
            ("type",),
        ),
        lambda c, w, a: c.evaluate_action(w, a),
    ),
    "prepare_transfer": (
        "prepare",
        "Builds and simulates a native or ERC-20 transfer: the decoded action, gas and fees, the simulation and the policy decision. Nothing is signed.",
        _object({"to": ADDRESS, "amount": AMOUNT, "token": TOKEN}, ("to", "amount")),
        lambda c, w, a: c.evaluate_action(w, {"type": "transfer", **_pick(a, ("to", "amount", "token"))}, simulate=True),
    ),
    "prepare_contract_call": (
        "prepare", "Builds and simulates a contract call (calldata, or function and args). Nothing is signed.",
        _object(CALL_FIELDS, ("to",)),
        lambda c, w, a: c.evaluate_action(w, {"type": "contract_call", **_pick(a, CALL_FIELDS)}, simulate=True),
    ),
    "sign_typed_data": (
        "sign", "Signs EIP-712 typed data (eth_signTypedData_v4 JSON) if the policy allows it.",
        _object({"typed_data": {"type": "object", "description": "types, primaryType, domain, message"}}, ("typed_data",)),
        lambda c, w, a: c.sign_typed_data(w, a["typed_data"]),
    ),
    "sign_message": (
        "sign", "Signs an EIP-191 personal message (text) if the policy allows it.",
        _object({"message": {"type": "string"}}, ("message",)), lambda c, w, a: c.sign_message(w, {"message": a["message"]}),
    ),
    "send_transfer": (
        "broadcast",
        "Sends a native or ERC-20 transfer if the policy allows it. Returns the transaction (submitted once broadcast); poll get_transaction.",
        _object({"to": ADDRESS, "amount": AMOUNT, "token": TOKEN, "confirm": CONFIRM, "idempotency_key": IDEMPOTENCY}, ("to", "amount", "confirm")),
        lambda c, w, a: c.send_transfer(w, _pick(a, ("to", "amount", "token")), idempotency_key=a.get("idempotency_key")),
    ),
    "send_contract_call": (
        "broadcast", "Sends a contract call if the policy allows it.",
        _object({**CALL_FIELDS, "confirm": CONFIRM, "idempotency_key": IDEMPOTENCY}, ("to", "confirm")),
        lambda c, w, a: c.send_contract_call(w, _pick(a, CALL_FIELDS), idempotency_key=a.get("idempotency_key")),
    ),
    "pay_x402": (
        "broadcast",
        "Fetches a URL that may answer 402 Payment Required (x402) and pays its exact price if the policy allows the host and the amount; returns the resource and the settlement.",
        _object({"url": {"type": "string", "maxLength": 2048, "description": "https:// (http:// on localhost)"}, "confirm": CONFIRM, "idempotency_key": IDEMPOTENCY}, ("url", "confirm")),
        lambda c, w, a: c.pay_x402(w, a["url"], idempotency_key=a.get("idempotency_key")),
    ),
    "speed_up_transaction": (
        "broadcast", "A submitted transaction not mined yet is sent again at its nonce with fees raised at least 12.5 %.",
        _object({"id": TX_ID, "confirm": CONFIRM}, ("id", "confirm")), lambda c, w, a: c.speed_up_transaction(a["id"]),
    ),
    "cancel_transaction": (
        "broadcast",
        "Cancels a held transaction before it runs, or replaces a submitted one by a zero-value self-send (the original may still be mined first).",
        _object({"id": TX_ID, "confirm": CONFIRM}, ("id", "confirm")), lambda c, w, a: c.cancel_transaction(a["id"]),
    ),
    "freeze_wallet": (
        "freeze",
        "Emergency stop: freezes the wallet at once; the daemon and the cosigner sign nothing more. Only an owner can lift it.",
        _object({"reason": {"type": "string", "description": "why (at most 400 characters)"}}),
        lambda c, w, a: c.freeze_wallet(w, reason=_freeze_reason(a)),
    ),
}

#: Every tool name with its band, in MCP's order.
TOOL_BANDS = {name: spec[0] for name, spec in SPECS.items()}


def check_input(schema: dict[str, Any], value: Any, field: str = "") -> tuple[str, str] | None:
    """The first problem of ``value`` against a tool schema as ``(field, message)``, or None."""
    kind = schema.get("type")
    where = field or "(input)"
    if kind == "object":
        if not isinstance(value, dict):
            return where, "must be an object"
        for name in schema.get("required", []):
            if value.get(name) is None:
                return name, "is required"
        for name, item in value.items():
            sub = schema.get("properties", {}).get(name)
            if sub is None:
                if schema.get("additionalProperties") is False and not field:
                    return name, "is not an argument of this tool"
                continue
            if item is None:
                continue
            problem = check_input(sub, item, f"{field}.{name}" if field else name)
            if problem:
                return problem
        return None
    if kind == "string":
        if not isinstance(value, str):
            return where, "must be a string"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return where, f"must match {schema['pattern']}"
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return where, "must be an integer"
        if "minimum" in schema and value < schema["minimum"]:
            return where, f"must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return where, f"must be at most {schema['maximum']}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return where, "must be a boolean"
    elif kind == "array":
        if not isinstance(value, list):
            return where, "must be an array"
    if "enum" in schema and value not in schema["enum"]:
        return where, f"must be one of {', '.join(map(str, schema['enum']))}"
    if "const" in schema and value != schema["const"]:
        return where, f"must be {schema['const']!r}"
    return None


@dataclass(frozen=True)
class MandateTool:
    """One tool bound to a client and a wallet."""

    name: str
    band: str
    description: str
    parameters: dict[str, Any]
    _call: _Call
    _client: Any
    _wallet: str

    def _prepare(self, args: dict[str, Any] | None) -> dict[str, Any]:
        args = dict(args or {})
        # As in MCP: a missing or non-true confirm is CONFIRMATION_REQUIRED, whatever else is wrong.
        if "confirm" in self.parameters["properties"]:
            _need_confirm(args)
        problem = check_input(self.parameters, args)
        if problem:
            field, message = problem
            code = "UNKNOWN_TOKEN" if field == "token" else "INVALID_INPUT"
            raise MandateError(0, code, "validation", f"{field} {message}", details={"field": field})
        return args

    def run(self, args: dict[str, Any] | None = None) -> Any:
        """Runs the tool with a :class:`~mandate_sdk.Client`: the answer, or the error envelope."""
        try:
            return self._call(self._client, self._wallet, self._prepare(args))
        except MandateError as error:
            return error.to_envelope()

    async def arun(self, args: dict[str, Any] | None = None) -> Any:
        """Runs the tool with an :class:`~mandate_sdk.AsyncClient`."""
        try:
            pending: Awaitable[Any] = self._call(self._client, self._wallet, self._prepare(args))
            return await pending
        except MandateError as error:
            return error.to_envelope()


def mandate_tools(client: Any, *, band: str = "read", freeze: bool = False, wallet: str | None = None) -> list[MandateTool]:
    """The tools of a band for one wallet (default: the agent key's wallet). A tool above
    the band is absent; the daemon still enforces the credential's own scopes."""
    if band not in BANDS:
        raise MandateError(0, "INVALID_INPUT", "validation", f"unknown band {band!r}")
    wallet = wallet or getattr(client, "agent_wallet", None)
    if not wallet:
        raise MandateError(0, "INVALID_INPUT", "validation", "the tools need a wallet (wallet=, or an agent-key client)")
    highest = BANDS.index(band)
    tools = []
    for name, (tool_band, description, schema, call) in SPECS.items():
        offered = freeze if tool_band == "freeze" else BANDS.index(tool_band) <= highest
        if offered:
            tools.append(MandateTool(name, tool_band, description, schema, call, client, wallet))
    return tools
