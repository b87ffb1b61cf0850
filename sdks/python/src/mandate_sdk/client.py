"""The Mandate REST clients (docs/API.md): :class:`Client` (sync) and
:class:`AsyncClient` (asyncio), on httpx. One method per route of ``ROUTES``, defined
once in :class:`_Routes`; answers are the daemon's JSON as the TypedDicts of
``mandate_sdk.types`` (an :class:`AsyncClient` method returns an awaitable of it)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from typing import Any, Mapping
from urllib.parse import quote, urlencode, urlsplit

import httpx

from ._routes import ROUTES
from .agent import AgentKey
from .errors import MandateError, is_envelope

DEFAULT_URL = "http://127.0.0.1:3100"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_RETRY_CODES = {"PEER_UNAVAILABLE", "DATABASE_UNAVAILABLE", "CHAIN_UNAVAILABLE", "RATE_LIMITED"}
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")


def _local(code: str, category: str, message: str, **kwargs: Any) -> MandateError:
    return MandateError(kwargs.pop("status", 0), code, category, message, **kwargs)


def _check_base_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _local("INVALID_INPUT", "validation", f"not a URL: {raw}")
    if parts.username or parts.password:
        raise _local("INSECURE_URL", "validation", "the daemon URL must not carry credentials")
    if parts.scheme != "https" and parts.hostname not in _LOOPBACK:
        raise _local("INSECURE_URL", "validation", "the daemon URL must be https:// unless it is a loopback address")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _local("INVALID_INPUT", "validation", "the daemon URL is an origin only (agent signatures cover the daemon's own path)")
    return f"{parts.scheme}://{parts.netloc}"


def _segment(value: str) -> str:
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise _local("INVALID_INPUT", "validation", f"not a path parameter: {value!r}", details={"field": "id"})
    return quote(value, safe="")


def _path(name: str, params: Mapping[str, str], query: Mapping[str, Any] | None = None) -> tuple[str, str]:
    method, template = ROUTES[name]
    path = re.sub(r"\{(\w+)\}", lambda m: _segment(params[m.group(1)]), template)
    pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items() if v is not None]
    return method, path + (f"?{urlencode(pairs)}" if pairs else "")


def _check_idempotency_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise _local(
            "INVALID_INPUT", "validation", "an idempotency key is 1 to 128 printable ASCII characters",
            details={"field": "idempotency_key"},
        )


def new_idempotency_key() -> str:
    """A fresh ``Idempotency-Key``: what a send uses when none is given."""
    return f"sdk-{uuid.uuid4()}"


def _backoff(error: MandateError, attempt: int) -> float:
    return min(error.retry_after if error.retry_after is not None else 0.25 * 2**attempt, 10.0)


class _Routes:
    """One method per route; ``_call`` and ``_send`` are the sync or async transport."""

    def _call(self, name: str, params: Mapping[str, str] | None = None, **options: Any) -> Any:
        raise NotImplementedError

    def _send(self, name: str, wallet: str, body: Any, idempotency_key: str | None) -> Any:
        raise NotImplementedError

    # ---- Public ----
    def health(self):
        """``GET /v1/health``: liveness."""
        return self._call("health", anonymous=True)

    def ready(self):
        """``GET /v1/ready``: readiness (a 503 answer is returned, not raised)."""
        return self._call("ready", anonymous=True, ok_statuses=(503,))

    def openapi(self):
        """``GET /v1/openapi.json``: the OpenAPI 3.1 document."""
        return self._call("openapi", anonymous=True)

    def metrics(self):
        """``GET /metrics``: Prometheus text (an operator credential; ``read`` suffices)."""
        return self._call("metrics", text=True)

    # ---- Operator credentials ----
    def login(self, password: str):
        """``POST /v1/admin/login`` with the master password (HTTP Basic ``operator:password``)."""
        return self._call("login", basic_password=password)

    def create_operator_key(self, body: Mapping[str, Any]):
        """``POST /v1/operator-keys``: ``{key, operator_key}``; the key is shown once."""
        return self._call("create_operator_key", body=body)

    def list_operator_keys(self):
        return self._call("list_operator_keys")

    def revoke_operator_key(self, key_id: str):
        return self._call("revoke_operator_key", {"id": key_id})

    # ---- Wallets and policies ----
    def register_wallet(self, body: Mapping[str, Any]):
        """``POST /v1/wallets``: registers a wallet whose key ``mandate wallet create`` generated."""
        return self._call("register_wallet", body=body)

    def list_wallets(self):
        return self._call("list_wallets")

    def get_wallet(self, wallet: str):
        return self._call("get_wallet", {"id": wallet})

    def get_balance(self, wallet: str, token: str | None = None, chain: str | None = None):
        """Native, or an ERC-20 by declared symbol or contract address; `chain` names one of several."""
        return self._call("get_balance", {"id": wallet}, query={"token": token, "chain": chain})

    def set_policy(self, wallet: str, document: Mapping[str, Any]):
        """``PUT /v1/wallets/{id}/policy`` with the policy document (docs/POLICY.md)."""
        return self._call("set_policy", {"id": wallet}, body=document)

    def get_policy(self, wallet: str):
        return self._call("get_policy", {"id": wallet})

    def get_policy_summary(self, wallet: str):
        return self._call("get_policy_summary", {"id": wallet})

    def evaluate_action(self, wallet: str, body: Mapping[str, Any], simulate: bool = False):
        """``POST /v1/wallets/{id}/policy/evaluate[?simulate=true]``: the decision; nothing is signed."""
        return self._call("evaluate_action", {"id": wallet}, body=body, query={"simulate": True if simulate else None})

    def dev_fund(self, wallet: str, amount: str):
        """``POST /v1/wallets/{id}/dev/fund``: test ether on a dev chain (anvil, hardhat)."""
        return self._call("dev_fund", {"id": wallet}, body={"amount": amount})

    # ---- Sessions ----
    def create_session(self, body: Mapping[str, Any]):
        """``POST /v1/sessions``: ``{token, session}``; the token is shown once."""
        return self._call("create_session", body=body)

    def list_sessions(self, wallet_id: str | None = None):
        return self._call("list_sessions", query={"wallet_id": wallet_id})

    def revoke_session(self, session_id: str):
        return self._call("revoke_session", {"id": session_id})

    def renew_session(self):
        return self._call("renew_session")

    def current_session(self):
        """``GET /v1/session``: the calling session and its band."""
        return self._call("current_session")

    # ---- Sends and signatures ----
    def send_transfer(self, wallet: str, body: Mapping[str, Any], idempotency_key: str | None = None):
        """``POST /v1/wallets/{id}/transactions`` with an ``Idempotency-Key`` (a new one per
        call unless given; retried with the same one when no answer arrived). The same key
        again returns what the first request got."""
        return self._send("send_transfer", wallet, body, idempotency_key)

    def pay_x402(self, wallet: str, url: str, chain: str | None = None, idempotency_key: str | None = None):
        """``POST /v1/wallets/{id}/x402/pay``: fetches ``url`` and, when it answers 402 with an
        x402 ``exact`` requirement the policy allows, pays it; returns the resource and the
        settlement. With an ``Idempotency-Key`` as :meth:`send_transfer`."""
        body: dict[str, Any] = {"url": url}
        if chain is not None:
            body["chain"] = chain
        return self._send("pay_x402", wallet, body, idempotency_key)

    def fetch_with_payment(self, wallet: str, url: str, chain: str | None = None, idempotency_key: str | None = None):
        """The resource at ``url``, paid through the wallet's mandate when it asks for x402."""
        return self.pay_x402(wallet, url, chain=chain, idempotency_key=idempotency_key)

    def dry_run(self, wallet: str, body: Mapping[str, Any]):
        return self._call("dry_run", {"id": wallet}, body=body)

    def send_contract_call(self, wallet: str, body: Mapping[str, Any], idempotency_key: str | None = None):
        """``POST /v1/wallets/{id}/contract-calls``, with an ``Idempotency-Key`` as :meth:`send_transfer`."""
        return self._send("send_contract_call", wallet, body, idempotency_key)

    def sign_typed_data(self, wallet: str, typed_data: Mapping[str, Any]):
        return self._call("sign_typed_data", {"id": wallet}, body={"typed_data": typed_data})

    def sign_message(self, wallet: str, body: Mapping[str, Any]):
        """``{"message": text}`` or ``{"message_hex": "0x…"}`` (EIP-191)."""
        return self._call("sign_message", {"id": wallet}, body=body)

    def sign_hash(self, wallet: str, hash_hex: str):
        return self._call("sign_hash", {"id": wallet}, body={"hash": hash_hex})

    def list_transactions(self, wallet: str, limit: int | None = None):
        return self._call("list_transactions", {"id": wallet}, query={"limit": limit})

    def get_transaction(self, tx_id: str):
        return self._call("get_transaction", {"id": tx_id})

    def cancel_transaction(self, tx_id: str):
        return self._call("cancel_transaction", {"id": tx_id})

    def speed_up_transaction(self, tx_id: str):
        return self._call("speed_up_transaction", {"id": tx_id})

    # ---- Held transactions, owners, freeze ----
    def list_approvals(self, wallet: str | None = None):
        return self._call("list_approvals", query={"wallet": wallet})

    def get_approval(self, item_id: str):
        return self._call("get_approval", {"id": item_id})

    def approve(self, item_id: str, signature: str):
        """The owner's signature is the credential: no token is sent."""
        return self._call("approve", {"id": item_id}, body={"signature": signature}, anonymous=True)

    def deny(self, item_id: str, signature: str):
        return self._call("deny", {"id": item_id}, body={"signature": signature}, anonymous=True)

    def owner_approval(self, item_id: str):
        return self._call("owner_approval", {"id": item_id}, anonymous=True)

    def list_owners(self, wallet: str):
        return self._call("list_owners", {"id": wallet})

    def add_owner(self, wallet: str, body: Mapping[str, Any]):
        return self._call("add_owner", {"id": wallet}, body=body)

    def set_owner_quorum(self, wallet: str, threshold: int):
        """``PUT /v1/wallets/{id}/owners/quorum``: approvals and unfreezes need ``threshold`` distinct owners."""
        return self._call("set_owner_quorum", {"id": wallet}, body={"threshold": threshold})

    def freeze_wallet(self, wallet: str, reason: str | None = None):
        """The daemon and the cosigner sign nothing more for the wallet."""
        return self._call("freeze_wallet", {"id": wallet}, body={} if reason is None else {"reason": reason})

    def freeze_all(self, reason: str | None = None):
        return self._call("freeze_all", body={} if reason is None else {"reason": reason})

    def unfreeze_text(self, wallet: str):
        return self._call("unfreeze_text", {"id": wallet})

    def unfreeze(self, wallet: str, body: Mapping[str, Any]):
        return self._call("unfreeze", {"id": wallet}, body=body, anonymous=True)

    def owner_unfreeze_text(self, wallet: str):
        return self._call("owner_unfreeze_text", {"id": wallet}, anonymous=True)

    # ---- Agent keys ----
    def list_agents(self, wallet: str):
        return self._call("list_agents", {"id": wallet})

    def register_agent(self, wallet: str, body: Mapping[str, Any]):
        """The owner's signature is the credential: no token is sent."""
        return self._call("register_agent", {"id": wallet}, body=body, anonymous=True)

    def revoke_agent(self, address: str):
        return self._call("revoke_agent", {"address": address})

    # ---- Subaccounts ----
    def list_subaccounts(self, wallet: str):
        return self._call("list_subaccounts", {"id": wallet})

    def create_subaccount(self, wallet: str, name: str):
        """A subaccount of the main wallet, at the next child key (operator)."""
        return self._call("create_subaccount", {"id": wallet}, body={"name": name})

    # ---- Audit ----
    def audit_verify(self, anchor_seq: int | None = None, anchor_hash: str | None = None):
        return self._call("audit_verify", query={"anchor_seq": anchor_seq, "anchor_hash": anchor_hash})

    def audit_tail(self, n: int | None = None):
        return self._call("audit_tail", query={"n": n})

    # ---- Webhooks ----
    def create_webhook(self, body: Mapping[str, Any]):
        return self._call("create_webhook", body=body)

    def list_webhooks(self):
        return self._call("list_webhooks")

    def delete_webhook(self, webhook_id: str):
        return self._call("delete_webhook", {"id": webhook_id})

    def list_deliveries(self, webhook_id: str):
        return self._call("list_deliveries", {"id": webhook_id})


class _Core(_Routes):
    """Configuration and request building shared by both clients."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        agent_key: AgentKey | None = None,
        wallet: str | None = None,
        timeout: float = 180.0,
        send_retries: int = 2,
        transport: Any = None,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        if token is not None and agent_key is not None:
            raise _local("INVALID_INPUT", "validation", "a token or an agent key, not both")
        if agent_key is not None and not wallet:
            raise _local("INVALID_INPUT", "validation", "an agent key signs for one wallet: give wallet=")
        self.__token = token
        self._agent_key = agent_key
        #: The wallet an agent-key client is bound to (else None).
        self.agent_wallet = wallet if agent_key is not None else None
        self._timeout = timeout
        self._send_retries = send_retries
        self._transport = transport

    def _settings(self) -> dict[str, Any]:
        return {"timeout": self._timeout, "send_retries": self._send_retries, "transport": self._transport}

    def __repr__(self) -> str:
        credential = f"agent {self._agent_key.address}" if self._agent_key else "bearer" if self.__token else "none"
        return f"{type(self).__name__}({self.base_url}, {credential})"

    def _build(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        anonymous: bool = False,
        basic_password: str | None = None,
        idempotency_key: str | None = None,
        text: bool = False,
    ) -> tuple[str, str, dict[str, str], bytes | None]:
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = {"accept": "text/plain" if text else "application/json"}
        if content is not None:
            headers["content-type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if basic_password is not None:
            encoded = base64.b64encode(f"operator:{basic_password}".encode("utf-8")).decode("ascii")
            headers["authorization"] = f"Basic {encoded}"
        elif not anonymous:
            if self.__token is not None:
                headers["authorization"] = f"Bearer {self.__token}"
            elif self._agent_key is not None and self.agent_wallet is not None:
                headers.update(self._agent_key.headers(method, path, content or b"", self.agent_wallet))
        return method, self.base_url + path, headers, content

    @staticmethod
    def _parse(
        response: httpx.Response, *, text: bool = False, ok_statuses: tuple[int, ...] = (), idempotency_key: str | None = None
    ) -> Any:
        ok = 200 <= response.status_code < 300 or response.status_code in ok_statuses
        if ok and text:
            return response.text
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = ...
        if not ok:
            if is_envelope(data):
                raise MandateError.from_envelope(response.status_code, data, idempotency_key)
            raise _local(
                "INTERNAL", "internal", f"unexpected HTTP {response.status_code} from the daemon (not the error envelope)",
                status=response.status_code, idempotency_key=idempotency_key,
            )
        if data is ...:
            raise _local("INTERNAL", "internal", f"the daemon's answer (HTTP {response.status_code}) is not JSON", status=response.status_code)
        return data

    def _unreachable(self, error: Exception, idempotency_key: str | None) -> MandateError:
        return _local(
            "PEER_UNAVAILABLE", "unavailable",
            f"no answer from the daemon at {self.base_url} ({type(error).__name__}); the outcome is unknown",
            retryable=True, required_action="retry; for a send, with the same idempotency key", idempotency_key=idempotency_key,
        )


class Client(_Core):
    """A synchronous client of one daemon with one credential (a token or an agent key).

    Use it as a context manager, or call :meth:`close`."""

    def __init__(self, base_url: str = DEFAULT_URL, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._http = httpx.Client(timeout=self._timeout, follow_redirects=False, transport=self._transport)

    @classmethod
    def from_password(cls, password: str, base_url: str = DEFAULT_URL, **kwargs: Any) -> Client:
        """A client holding an admin token from the master password (15 minutes)."""
        with cls(base_url, **kwargs) as anonymous:
            token = anonymous.login(password)["token"]
        return cls(base_url, token=token, **kwargs)

    def with_token(self, token: str) -> Client:
        """The same daemon with a bearer token (e.g. a session's ``mnd_sess_…``)."""
        return Client(self.base_url, token=token, **self._settings())

    def as_agent(self, key: AgentKey, wallet: str) -> Client:
        """The same daemon, every request signed with an agent key for ``wallet``."""
        return Client(self.base_url, agent_key=key, wallet=wallet, **self._settings())

    def request(self, method: str, path: str, *, ok_statuses: tuple[int, ...] = (), text: bool = False, **options: Any) -> Any:
        """One request; raises :class:`MandateError` for every error answer."""
        key = options.get("idempotency_key")
        method, url, headers, content = self._build(method, path, text=text, **options)
        try:
            response = self._http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as error:
            raise self._unreachable(error, key) from None
        return self._parse(response, text=text, ok_statuses=ok_statuses, idempotency_key=key)

    def _call(self, name: str, params: Mapping[str, str] | None = None, **options: Any) -> Any:
        method, path = _path(name, params or {}, options.pop("query", None))
        return self.request(method, path, **options)

    def _send(self, name: str, wallet: str, body: Any, idempotency_key: str | None) -> Any:
        key = idempotency_key if idempotency_key is not None else new_idempotency_key()
        _check_idempotency_key(key)
        method, path = _path(name, {"id": wallet})
        attempt = 0
        while True:
            try:
                return self.request(method, path, body=dict(body), idempotency_key=key)
            except MandateError as error:
                if error.code not in _RETRY_CODES or attempt >= self._send_retries:
                    raise
                time.sleep(_backoff(error, attempt))
                attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Core):
    """An asyncio client: the methods of :class:`Client`, each returning an awaitable.

    Use it as an async context manager, or await :meth:`aclose`."""

    def __init__(self, base_url: str = DEFAULT_URL, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._http = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=self._transport)

    @classmethod
    async def from_password(cls, password: str, base_url: str = DEFAULT_URL, **kwargs: Any) -> AsyncClient:
        """A client holding an admin token from the master password (15 minutes)."""
        async with cls(base_url, **kwargs) as anonymous:
            token = (await anonymous.login(password))["token"]
        return cls(base_url, token=token, **kwargs)

    def with_token(self, token: str) -> AsyncClient:
        return AsyncClient(self.base_url, token=token, **self._settings())

    def as_agent(self, key: AgentKey, wallet: str) -> AsyncClient:
        return AsyncClient(self.base_url, agent_key=key, wallet=wallet, **self._settings())

    async def request(self, method: str, path: str, *, ok_statuses: tuple[int, ...] = (), text: bool = False, **options: Any) -> Any:
        key = options.get("idempotency_key")
        method, url, headers, content = self._build(method, path, text=text, **options)
        try:
            response = await self._http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as error:
            raise self._unreachable(error, key) from None
        return self._parse(response, text=text, ok_statuses=ok_statuses, idempotency_key=key)

    def _call(self, name: str, params: Mapping[str, str] | None = None, **options: Any) -> Any:
        method, path = _path(name, params or {}, options.pop("query", None))
        return self.request(method, path, **options)

    def _send(self, name: str, wallet: str, body: Any, idempotency_key: str | None) -> Any:
        key = idempotency_key if idempotency_key is not None else new_idempotency_key()
        _check_idempotency_key(key)
        method, path = _path(name, {"id": wallet})

        async def attempts() -> Any:
            attempt = 0
            while True:
                try:
                    return await self.request(method, path, body=dict(body), idempotency_key=key)
                except MandateError as error:
                    if error.code not in _RETRY_CODES or attempt >= self._send_retries:
                        raise
                    await asyncio.sleep(_backoff(error, attempt))
                    attempt += 1

        return attempts()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
