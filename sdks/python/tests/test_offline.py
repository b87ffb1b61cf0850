"""What needs no daemon: each method sends its own route, sends carry and keep an
idempotency key, errors parse, and agent signatures are well formed."""

import asyncio
import base64
import hashlib
import inspect
import json
import re

import coincurve
import httpx
import pytest

from mandate_sdk import ROUTES, AgentKey, AsyncClient, Client, MandateError, request_digest
from mandate_sdk.agent import keccak256

# A fixed vector from an independent implementation: `signature` is what anvil 1.7.1
# answered to eth_signTypedData_v4 for its dev account 0 (the secret below) with the
# EIP-712 domain {name: Mandate, version: 1} and the AgentRequest message of these
# fields (bodyHash = SHA-256 of `body`). ECDSA here is deterministic (RFC 6979), so equal
# signatures mean equal digests. The TypeScript SDK asserts the same vector; the live
# tests compare with anvil again on fresh inputs and have the daemon accept the SDK.
VECTOR = {
    "secret": "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "method": "POST",
    "path": "/v1/wallets/wal_a/transactions?x=1",
    "body": b'{"to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","amount":"0.5"}',
    "wallet": "wal_a",
    "nonce": 1800000000000,
    "digest": "68ef31ab429e1ea029bcef8db03ad6421afd22b1b75289595c26959f3c265ba9",
    "signature": "0xd47087f727523e5d02c55ad36ed9dce244af7419aaa8c44982772c94884a79596fd43baa5f1b2e894bf143bdbc219bc169a08f1d544f8071acee2161238c94ed1c",
}
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def recording(answers):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer.get("status", 200), content=answer.get("body", b"{}"))

    return calls, handler


def dummy_args(fn, template):
    """The required arguments: the path parameter first (if any), then empty bodies."""
    required = [p for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty]
    return ["p_1" if i == 0 and "{" in template else {} for i in range(len(required))]


def test_each_method_sends_its_own_route():
    for name, (method, template) in ROUTES.items():
        calls, handler = recording([{"body": b"m 1\n" if name == "metrics" else b"{}"}])
        client = Client("http://127.0.0.1:1", token="mnd_sess_x", transport=httpx.MockTransport(handler))
        getattr(client, name)(*dummy_args(getattr(client, name), template))
        assert len(calls) == 1, name
        assert calls[0].method == method, name
        assert calls[0].url.path == re.sub(r"\{\w+\}", "p_1", template), name


def test_async_methods_send_the_same_routes():
    async def main():
        for name, (method, template) in ROUTES.items():
            calls, handler = recording([{"body": b"m 1\n" if name == "metrics" else b"{}"}])
            client = AsyncClient("http://127.0.0.1:1", token="t", transport=httpx.MockTransport(handler))
            await getattr(client, name)(*dummy_args(getattr(client, name), template))
            assert (calls[0].method, calls[0].url.path) == (method, re.sub(r"\{\w+\}", "p_1", template)), name
            await client.aclose()

    asyncio.run(main())


def test_path_parameters_cannot_leave_their_segment():
    calls, handler = recording([{}])
    client = Client("http://127.0.0.1:1", transport=httpx.MockTransport(handler))
    for bad in ("..", ".", ""):
        with pytest.raises(MandateError) as caught:
            client.get_transaction(bad)
        assert caught.value.code == "INVALID_INPUT"
    client.get_transaction("a/../../admin?x=1")
    assert calls[0].url.raw_path == b"/v1/transactions/a%2F..%2F..%2Fadmin%3Fx%3D1"


def test_a_send_retries_a_lost_answer_with_the_same_key_and_not_a_denial():
    calls, handler = recording([httpx.ConnectError("refused"), {"body": b'{"id": "tx_1"}'}])
    client = Client("http://127.0.0.1:1", token="t", transport=httpx.MockTransport(handler))
    assert client.send_transfer("wal_1", {"to": "0x0", "amount": "1"}) == {"id": "tx_1"}
    keys = [c.headers["Idempotency-Key"] for c in calls]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("sdk-")

    envelope = {"error": {"category": "policy", "code": "POLICY_DENIED", "message": "no", "required_action": "ask",
                          "retryable": False, "retry_after": None, "details": {"rule_id": "r"}}}
    calls, handler = recording([{"status": 403, "body": json.dumps(envelope).encode()}])
    client = Client("http://127.0.0.1:1", transport=httpx.MockTransport(handler))
    with pytest.raises(MandateError) as caught:
        client.send_transfer("wal_1", {"to": "0x0", "amount": "1"}, idempotency_key="k-1")
    error = caught.value
    assert len(calls) == 1
    assert (error.code, error.category, error.status, error.retryable, error.idempotency_key, error.details["rule_id"]) == (
        "POLICY_DENIED", "policy", 403, False, "k-1", "r")
    assert error.to_envelope() == envelope

    limited = {"error": {**envelope["error"], "category": "unavailable", "code": "RATE_LIMITED", "retryable": True, "retry_after": 7}}
    calls, handler = recording([{"status": 429, "body": json.dumps(limited).encode()}])
    with pytest.raises(MandateError) as caught:
        Client("http://127.0.0.1:1", transport=httpx.MockTransport(handler)).login("pw")
    assert caught.value.retry_after == 7
    assert calls[0].headers["authorization"] == "Basic " + base64.b64encode(b"operator:pw").decode()

    with pytest.raises(MandateError) as caught:
        client.send_transfer("wal_1", {"to": "0x0"}, idempotency_key="has space")
    assert caught.value.code == "INVALID_INPUT"
    calls, handler = recording([{"status": 502, "body": b"<html>bad gateway</html>"}])
    with pytest.raises(MandateError) as caught:
        Client("http://127.0.0.1:1", transport=httpx.MockTransport(handler)).health()
    assert (caught.value.code, caught.value.status) == ("INTERNAL", 502)


def test_the_daemon_url_must_be_https_unless_loopback():
    for url, code in (("http://example.com", "INSECURE_URL"), ("https://u:p@example.com", "INSECURE_URL"), ("https://example.com/x", "INVALID_INPUT")):
        with pytest.raises(MandateError) as caught:
            Client(url)
        assert caught.value.code == code
    assert Client("https://example.com/").base_url == "https://example.com"


def test_a_known_secret_gives_its_published_address():
    # anvil's (and hardhat's) first dev account: a published secret and address.
    key = AgentKey.from_secret_hex(VECTOR["secret"])
    assert key.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert VECTOR["secret"] not in repr(key) and VECTOR["secret"] not in str(key)
    assert AgentKey.from_file_text(key.to_file_text()).address == key.address
    with pytest.raises(MandateError):
        AgentKey.from_file_text('{"kind":"secp256k1","secret":"00"}')


def test_the_vector_anvil_signed():
    key = AgentKey.from_secret_hex(VECTOR["secret"])
    args = (VECTOR["method"], VECTOR["path"], VECTOR["body"], VECTOR["wallet"], VECTOR["nonce"])
    assert request_digest(*args).hex() == VECTOR["digest"]
    assert key.sign_request(*args) == VECTOR["signature"]


def test_signatures_are_low_s_recover_the_agent_and_bind_every_field():
    key = AgentKey.generate()
    for nonce in range(1, 31):
        sig = bytes.fromhex(key.sign_request("POST", "/p", b"{}", "wal_a", nonce)[2:])
        assert len(sig) == 65 and sig[64] in (27, 28)
        assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
        public = coincurve.PublicKey.from_signature_and_message(sig[:64] + bytes([sig[64] - 27]), request_digest("POST", "/p", b"{}", "wal_a", nonce), hasher=None)
        assert "0x" + keccak256(public.format(compressed=False)[1:])[12:].hex() == key.address.lower()
    base = request_digest("POST", "/p", b"{}", "w", 7)
    for other in (
        request_digest("GET", "/p", b"{}", "w", 7),
        request_digest("POST", "/p?", b"{}", "w", 7),
        request_digest("POST", "/p", b"", "w", 7),
        request_digest("POST", "/p", b"{}", "w2", 7),
        request_digest("POST", "/p", b"{}", "w", 8),
    ):
        assert other != base
    nonces = [key.next_nonce() for _ in range(2000)]
    assert all(b > a for a, b in zip(nonces, nonces[1:]))
    assert hashlib.sha256(b"").hexdigest() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
