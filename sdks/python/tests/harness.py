"""Starts the real parties for the tests: anvil (from the repository's npm test
dependencies), ``mandate init --dev`` and ``mandate serve --dev`` (the daemon with its
cosigner), as scripts/demo.sh and crates/mandate-e2e/tests/daemon/main.rs do.
MANDATE_BIN names the mandate binary (default: <repo>/target/debug/mandate),
MANDATE_ANVIL the anvil binary."""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any

import httpx

REPO = pathlib.Path(__file__).resolve().parents[3]
BIN = os.environ.get("MANDATE_BIN") or str(REPO / "target" / "debug" / "mandate")
ANVIL = os.environ.get("MANDATE_ANVIL") or str(REPO / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil")


def free_port() -> int:
    """A free port on 127.0.0.1 below the ephemeral range (32768+)."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class Stack:
    def __init__(self) -> None:
        for what, path in (("mandate (MANDATE_BIN)", BIN), ("anvil (MANDATE_ANVIL, or npm ci at the repository root)", ANVIL)):
            if not os.path.exists(path):
                raise RuntimeError(f"{what} not found at {path}")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mandate-sdk-py-"))
        self.children: list[subprocess.Popen[bytes]] = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        rpc_port = free_port()
        self.children.append(
            subprocess.Popen([ANVIL, "--host", "127.0.0.1", "--port", str(rpc_port), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        self.rpc_url = f"http://127.0.0.1:{rpc_port}"
        for attempt in range(100):
            try:
                self.rpc("eth_chainId")
                break
            except (httpx.HTTPError, RuntimeError):
                if attempt == 99:
                    raise
                time.sleep(0.1)
        data = self.dir / "data"
        cosigner, service, api = free_port(), free_port(), free_port()
        self.run("init", "--dev", "--auto-provision", "--data-dir", str(data), "--cosigner-addr", f"127.0.0.1:{cosigner}", "--service-addr", f"127.0.0.1:{service}", json_output=False)
        self.master_file = data / "master-password"
        stderr = open(self.dir / "serve.stderr", "wb")  # noqa: SIM115 (kept open for the child's life)
        serve = subprocess.Popen(
            [BIN, "serve", "--dev", "--data-dir", str(data), "--listen", f"127.0.0.1:{api}", "--rpc-url", self.rpc_url],
            env={**os.environ, "MANDATE_MASTER_PASSWORD_FILE": str(self.master_file)},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
        )
        self.children.append(serve)
        # The daemon's first stdout line is its JSON banner, printed once it listens.
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(serve.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(60)
        if not line or not line[0]:
            raise RuntimeError(f"mandate serve printed no banner; see {self.dir / 'serve.stderr'}")
        banner = json.loads(line[0])
        threading.Thread(target=lambda: shutil.copyfileobj(serve.stdout, open(os.devnull, "wb")), daemon=True).start()  # type: ignore[arg-type]
        self.url = f"http://{banner['listening']}"
        passphrase = self.dir / "recovery-passphrase"
        passphrase.write_text("sdk test recovery passphrase")
        passphrase.chmod(0o600)
        self.cli_env = {
            **os.environ,
            "MANDATE_URL": self.url,
            "MANDATE_MASTER_PASSWORD_FILE": str(self.master_file),
            "MANDATE_RECOVERY_DIR": str(data / "recovery"),
            "MANDATE_RECOVERY_PASSPHRASE_FILE": str(passphrase),
        }
        self.master_password = self.master_file.read_text().strip()

    def run(self, *args: str, json_output: bool = True) -> Any:
        """``mandate [--json] ARGS`` as the operator; the parsed JSON answer."""
        argv = [BIN, "--json", *args] if json_output else [BIN, *args]
        done = subprocess.run(argv, env=getattr(self, "cli_env", None), capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"mandate {' '.join(args)} failed: {done.stderr.decode() or done.stdout.decode()}")
        return json.loads(done.stdout) if json_output else done.stdout.decode()

    def create_wallet(self, name: str) -> dict[str, Any]:
        """A new wallet (the DKG runs in the CLI as the recovery party)."""
        return self.run("wallet", "create", "--name", name, "--recovery-out", str(self.dir / f"{name}.recovery"))

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        answer = httpx.post(self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=10).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def chain_balance(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", [address, "latest"]), 16)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.terminate()
        for child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_final(client: Any, tx_id: str, seconds: float = 60) -> dict[str, Any]:
    """Polls a transaction until it leaves reserved/submitted."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tx = client.get_transaction(tx_id)
        if tx["status"] not in ("reserved", "submitted", "approved"):
            return tx
        time.sleep(0.2)
    raise AssertionError(f"transaction {tx_id} did not settle in {seconds} s")
