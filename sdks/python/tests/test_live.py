"""The SDK against a real daemon, cosigner and anvil (started by conftest.py)."""

import asyncio
import hashlib
import json
import os
import secrets
import time

import httpx
import pytest

from harness import wait_final
from mandate_sdk import AgentKey, AsyncClient, Client, MandateError, mandate_tools
from mandate_sdk.langchain import langchain_tools

ETH = 10**18
POLICY = {
    "version": 1,
    "rules": [
        {"id": "per-tx", "type": "max_per_tx", "amount": "1"},
        {"id": "daily", "type": "rolling_cap", "window_secs": 86400, "amount": "10"},
    ],
}


def random_address() -> str:
    return AgentKey.generate().address


class Recorder:
    """An httpx transport that records requests and may rewrite their headers."""

    def __init__(self, rewrite=None):
        self.seen: list[httpx.Request] = []
        self.rewrite = rewrite
        self.inner = httpx.HTTPTransport()

    def __call__(self) -> httpx.BaseTransport:
        recorder = self

        class Transport(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                if recorder.rewrite:
                    recorder.rewrite(request.headers)
                recorder.seen.append(request)
                return recorder.inner.handle_request(request)

        return Transport()


@pytest.fixture(scope="module")
def admin(stack):
    with Client.from_password(stack.master_password, stack.url) as client:
        yield client


@pytest.fixture(scope="module")
def wallet(stack, admin):
    created = stack.create_wallet("py-sdk")
    admin.set_policy(created["id"], POLICY)
    funded = admin.dev_fund(created["id"], "5")
    assert funded["balance_wei"] == str(5 * ETH)
    return created


def session(admin, wallet, scopes=("broadcast",), ttl=600):
    return admin.create_session({"wallet_id": wallet["id"], "ttl_secs": ttl, "scopes": list(scopes)})


def test_public_endpoints_login_and_operator_view(stack, admin, wallet):
    with Client(stack.url) as anonymous:
        assert anonymous.health()["status"] == "ok"
        assert anonymous.ready()["ready"] is True
        with pytest.raises(MandateError) as caught:
            anonymous.list_wallets()
        assert caught.value.code == "UNAUTHENTICATED" and caught.value.status == 401
    with pytest.raises(MandateError) as caught:
        Client.from_password("not the password", stack.url)
    assert (caught.value.code, caught.value.category) == ("INVALID_CREDENTIALS", "authentication")
    assert any(w["id"] == wallet["id"] for w in admin.list_wallets()["wallets"])
    assert admin.get_wallet(wallet["id"])["address"] == wallet["address"]
    assert "mandate_http_requests_total" in admin.metrics()
    assert admin.audit_verify()["ok"] is True
    assert len(admin.get_policy(wallet["id"])["document"]["rules"]) == 2


def test_a_session_sends_a_transfer_that_confirms_and_an_idempotent_retry_returns_it(stack, admin, wallet):
    created = session(admin, wallet, ttl=3600)
    token = created["token"]
    recorder = Recorder()
    with Client(stack.url, token=token, transport=recorder()) as agent:
        assert token not in repr(agent)
        me = agent.current_session()
        assert me["band"] == "broadcast" and me["session"]["wallet_id"] == wallet["id"]
        to = random_address()
        key = f"py-sdk-{time.time_ns()}"
        tx = agent.send_transfer(wallet["id"], {"to": to, "amount": "0.5"}, idempotency_key=key)
        assert (tx["to"], tx["value_wei"]) == (to, str(ETH // 2))
        assert wait_final(agent, tx["id"])["status"] == "confirmed"
        assert stack.chain_balance(to) == ETH // 2, "the recipient got exactly 0.5 ETH on chain"

        again = agent.send_transfer(wallet["id"], {"to": to, "amount": "0.5"}, idempotency_key=key)
        assert again["id"] == tx["id"], "the same key answers the same transaction"
        assert stack.chain_balance(to) == ETH // 2, "and nothing was sent twice"
        with pytest.raises(MandateError) as caught:
            agent.send_transfer(wallet["id"], {"to": to, "amount": "0.4"}, idempotency_key=key)
        assert (caught.value.code, caught.value.status, caught.value.idempotency_key) == ("IDEMPOTENCY_KEY_REUSED", 409, key)

        before = len(recorder.seen)
        agent.send_transfer(wallet["id"], {"to": to, "amount": "0.01"})
        agent.send_transfer(wallet["id"], {"to": to, "amount": "0.01"})
        keys = [r.headers["Idempotency-Key"] for r in recorder.seen[before:]]
        assert len(keys) == 2 and keys[0] != keys[1] and all(k.startswith("sdk-") for k in keys)
        assert any(t["id"] == tx["id"] for t in agent.list_transactions(wallet["id"], limit=10)["transactions"])


def test_a_denial_is_a_mandate_error_with_policy_denied(stack, admin, wallet):
    created = session(admin, wallet)
    with admin.with_token(created["token"]) as agent:
        with pytest.raises(MandateError) as caught:
            agent.send_transfer(wallet["id"], {"to": random_address(), "amount": "1.5"})
        denied = caught.value
        assert (denied.code, denied.status, denied.category, denied.retryable, denied.retry_after) == ("POLICY_DENIED", 403, "policy", False, None)
        assert denied.details["rule_id"] == "per-tx"
        assert denied.idempotency_key.startswith("sdk-")
        assert agent.evaluate_action(wallet["id"], {"type": "transfer", "to": random_address(), "amount": "1.5"})["decision"]["verdict"] == "deny"
        reader = admin.with_token(session(admin, wallet, scopes=("read",))["token"])
        with pytest.raises(MandateError) as caught:
            reader.send_transfer(wallet["id"], {"to": random_address(), "amount": "0.1"})
        assert caught.value.code == "SCOPE_MISSING"
        reader.close()
        assert admin.revoke_session(created["session"]["id"])["revoked"] is True
        with pytest.raises(MandateError) as caught:
            agent.get_wallet(wallet["id"])
        assert caught.value.code == "SESSION_REVOKED"


def test_the_async_client_does_the_same(stack, admin, wallet):
    token = session(admin, wallet)["token"]

    async def main():
        async with AsyncClient(stack.url, token=token) as agent:
            to = random_address()
            balance, tx = await asyncio.gather(agent.get_balance(wallet["id"]), agent.send_transfer(wallet["id"], {"to": to, "amount": "0.05"}))
            assert int(balance["balance_wei"]) > 0
            for _ in range(300):
                final = await agent.get_transaction(tx["id"])
                if final["status"] not in ("reserved", "submitted"):
                    break
                await asyncio.sleep(0.2)
            assert final["status"] == "confirmed"
            assert stack.chain_balance(to) == ETH // 20
            with pytest.raises(MandateError) as caught:
                await agent.send_transfer(wallet["id"], {"to": to, "amount": "3"})
            assert caught.value.code == "POLICY_DENIED"
        admin_async = await AsyncClient.from_password(stack.master_password, stack.url)
        assert any(w["id"] == wallet["id"] for w in (await admin_async.list_wallets())["wallets"])
        await admin_async.aclose()

    asyncio.run(main())


def test_an_agent_key_from_the_cli_signs_through_the_sdk_and_a_tampered_signature_is_refused(stack, admin, wallet):
    owner_file, key_file = stack.dir / "alice.owner", stack.dir / "bot.agent"
    owner = stack.run("owner", "keygen", "--out", str(owner_file))
    stack.run("owner", "add", "--wallet", wallet["id"], "--ed25519-pubkey", owner["owner_key"].removeprefix("ed25519:"))
    generated = stack.run("agent", "keygen", "--out", str(key_file))
    registered = stack.run(
        "agent", "register", "--wallet", wallet["id"], "--key", str(key_file), "--name", "py-bot",
        "--scopes", "read,broadcast", "--valid-for-secs", "3600", "--owner-key", str(owner_file),
    )
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    key = AgentKey.from_file(key_file)
    assert key.address == generated["address"] == registered["agent"]["address"]
    assert json.loads(key_file.read_text())["secret"] not in repr(key)

    recorder = Recorder()
    with Client(stack.url, agent_key=key, wallet=wallet["id"], transport=recorder()) as bot:
        assert bot.get_balance(wallet["id"])["wallet_id"] == wallet["id"]
        to = random_address()
        tx = bot.send_transfer(wallet["id"], {"to": to, "amount": "0.2"})
        assert wait_final(bot, tx["id"])["status"] == "confirmed"
        assert stack.chain_balance(to) == ETH // 5
    nonces = [int(r.headers["Mandate-Agent-Nonce"]) for r in recorder.seen]
    assert all(b > a for a, b in zip(nonces, nonces[1:]))
    assert all("authorization" not in r.headers for r in recorder.seen), "no token anywhere"
    assert any(a["address"] == key.address and a["last_used_at"] is not None for a in admin.list_agents(wallet["id"])["agents"])

    def flip(headers):
        sig = headers["Mandate-Agent-Signature"]
        headers["Mandate-Agent-Signature"] = sig[:10] + format(int(sig[10:12], 16) ^ 1, "02x") + sig[12:]

    with Client(stack.url, agent_key=key, wallet=wallet["id"], transport=Recorder(flip)()) as tampered:
        with pytest.raises(MandateError) as caught:
            tampered.send_transfer(wallet["id"], {"to": to, "amount": "0.2"})
        assert (caught.value.code, caught.value.status) == ("AGENT_SIGNATURE_INVALID", 401)
    last = recorder.seen[-1]
    replay = httpx.request(last.method, str(last.url), headers=dict(last.headers), content=last.content)
    assert replay.json()["error"]["code"] == "AGENT_NONCE_REPLAYED"
    with Client(stack.url, agent_key=AgentKey.generate(), wallet=wallet["id"]) as stranger:
        with pytest.raises(MandateError) as caught:
            stranger.get_balance(wallet["id"])
        assert caught.value.code == "AGENT_UNKNOWN"
    assert stack.chain_balance(to) == ETH // 5, "nothing more was sent"


def test_agent_signatures_equal_anvils_typed_data_signatures(stack):
    key = AgentKey.from_secret_hex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    for i in range(5):
        body = secrets.token_bytes(40 + i)
        path = f"/v1/wallets/wal_{secrets.token_hex(6)}/transactions?limit={i}"
        wallet_id = f"wal_{secrets.token_hex(12)}"
        nonce = time.time_ns() // 1_000_000 + i
        typed = {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
                "AgentRequest": [
                    {"name": "method", "type": "string"}, {"name": "path", "type": "string"}, {"name": "bodyHash", "type": "bytes32"},
                    {"name": "wallet", "type": "string"}, {"name": "nonce", "type": "uint64"},
                ],
            },
            "primaryType": "AgentRequest",
            "domain": {"name": "Mandate", "version": "1"},
            "message": {"method": "DELETE", "path": path, "bodyHash": "0x" + hashlib.sha256(body).hexdigest(), "wallet": wallet_id, "nonce": nonce},
        }
        assert key.sign_request("DELETE", path, body, wallet_id, nonce) == stack.rpc("eth_signTypedData_v4", [key.address, typed])


def test_the_langchain_tools_offer_the_mcp_bands_and_run_through_the_daemon(stack, admin, wallet):
    token = session(admin, wallet)["token"]
    with admin.with_token(token) as agent:
        prepare = {t.name: t for t in langchain_tools(agent, wallet=wallet["id"], band="prepare")}
        assert sorted(prepare) == sorted([
            "get_wallet", "get_balance", "list_transactions", "get_transaction", "get_policy_summary", "evaluate_action",
            "prepare_transfer", "prepare_contract_call",
        ])
        assert prepare["prepare_transfer"].args_schema["required"] == ["to", "amount"]
        prepared = prepare["prepare_transfer"].invoke({"to": random_address(), "amount": "0.3"})
        assert prepared["decision"]["verdict"] == "allow" and prepared["simulation"]["success"] is True
        bad = mandate_tools(agent, wallet=wallet["id"])[1].run({"wallet": "wal_other"})
        assert (bad["error"]["code"], bad["error"]["details"]["field"]) == ("INVALID_INPUT", "wallet")

        tools = {t.name: t for t in langchain_tools(agent, wallet=wallet["id"], band="broadcast")}
        assert "freeze_wallet" not in tools and "send_transfer" in tools
        to = random_address()
        assert tools["send_transfer"].invoke({"to": to, "amount": "0.3"})["error"]["code"] == "CONFIRMATION_REQUIRED"
        sent = tools["send_transfer"].invoke({"to": to, "amount": "0.3", "confirm": True})
        assert wait_final(agent, sent["id"])["status"] == "confirmed"
        assert stack.chain_balance(to) == 3 * ETH // 10
        denied = tools["send_transfer"].invoke({"to": to, "amount": "2", "confirm": True})
        assert denied["error"]["code"] == "POLICY_DENIED"

    async def via_async():
        async with AsyncClient(stack.url, token=token) as agent:
            tools = {t.name: t for t in langchain_tools(agent, wallet=wallet["id"], band="read")}
            balance = await tools["get_balance"].ainvoke({})
            assert balance["wallet_id"] == wallet["id"]

    asyncio.run(via_async())


def test_the_python_example_runs_its_scripted_model_against_the_daemon(stack, admin, wallet):
    import pathlib
    import subprocess
    import sys

    token = session(admin, wallet)["token"]
    to = random_address()
    root = pathlib.Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "python" / "agent_loop.py"), to],
        env={**os.environ, "PYTHONPATH": str(root / "sdks" / "python" / "src"), "MANDATE_URL": stack.url,
             "MANDATE_SESSION_TOKEN": token, "MANDATE_WALLET": wallet["id"]},
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 6, done.stdout
    assert lines[3].startswith("[3] send_transfer")
    assert '"status": "confirmed"' in lines[4]
    assert "error POLICY_DENIED" in lines[5]
    assert token not in done.stdout + done.stderr
    assert stack.chain_balance(to) == ETH // 10
