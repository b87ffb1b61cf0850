"""Agent keys (docs/AGENTS.md): an agent signs each request with its own secp256k1 key
instead of sending a token.

The digest is EIP-712 with the domain ``EIP712Domain(string name,string version)`` =
(``Mandate``, ``1``) over
``AgentRequest(string method,string path,bytes32 bodyHash,string wallet,uint64 nonce)``,
exactly as ``crates/mandate-core/src/agent.rs`` computes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import coincurve
from Crypto.Hash import keccak

from .errors import MandateError

REQUEST_TYPE = "AgentRequest(string method,string path,bytes32 bodyHash,string wallet,uint64 nonce)"
DOMAIN_TYPE = "EIP712Domain(string name,string version)"


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def _text(value: str) -> bytes:
    return keccak256(value.encode("utf-8"))


def domain_separator() -> bytes:
    """The EIP-712 domain separator of agent requests."""
    return keccak256(_text(DOMAIN_TYPE) + _text("Mandate") + _text("1"))


def request_digest(method: str, path: str, body: bytes, wallet: str, nonce: int) -> bytes:
    """The digest an agent signs for one request: the method as sent, the path with its
    query string exactly as sent, the body bytes exactly as sent (empty for none), the
    wallet id and the nonce (milliseconds since the epoch)."""
    if not 0 <= nonce < 1 << 64:
        raise ValueError("nonce out of uint64 range")
    struct_hash = keccak256(
        _text(REQUEST_TYPE)
        + _text(method)
        + _text(path)
        + hashlib.sha256(body).digest()
        + _text(wallet)
        + nonce.to_bytes(32, "big")
    )
    return keccak256(b"\x19\x01" + domain_separator() + struct_hash)


def checksum_address(address: bytes) -> str:
    """The EIP-55 form of a 20-byte address."""
    hexed = address.hex()
    digest = _text(hexed).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexed))


def _invalid(message: str) -> MandateError:
    return MandateError(0, "INVALID_INPUT", "validation", message)


class AgentKey:
    """An agent's key: the file ``mandate agent keygen`` writes
    (``{"kind":"agent-secp256k1","secret":"<hex>"}``, mode 0600). The secret is in no
    ``repr``/``str`` output."""

    __slots__ = ("_key", "address", "_last_nonce", "_lock")

    def __init__(self, secret: bytes) -> None:
        try:
            self._key = coincurve.PrivateKey(secret)
        except Exception:  # coincurve raises ValueError or its own errors for out-of-range secrets
            raise _invalid("not a valid secp256k1 secret") from None
        public = self._key.public_key.format(compressed=False)[1:]
        #: The agent's address (EIP-55).
        self.address = checksum_address(keccak256(public)[12:])
        self._last_nonce = 0
        self._lock = threading.Lock()

    @classmethod
    def from_file_text(cls, text: str) -> AgentKey:
        try:
            data = json.loads(text)
        except ValueError:
            raise _invalid("not an agent key file (JSON with kind and secret)") from None
        if not isinstance(data, dict) or set(data) != {"kind", "secret"} or data["kind"] != "agent-secp256k1":
            raise _invalid("not an agent key file (kind agent-secp256k1 and secret)")
        return cls.from_secret_hex(data["secret"])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AgentKey:
        """Reads a key file; refused if group or others may read it (as the CLI does)."""
        mode = os.stat(path).st_mode
        if mode & 0o077:
            raise MandateError(0, "INSECURE_FILE_PERMISSIONS", "validation", f"{path} is readable by others: chmod 600 it")
        with open(path, encoding="utf-8") as handle:
            return cls.from_file_text(handle.read())

    @classmethod
    def from_secret_hex(cls, text: str) -> AgentKey:
        try:
            secret = bytes.fromhex(text.strip().removeprefix("0x"))
        except (ValueError, AttributeError):
            raise _invalid("the secret is not hex") from None
        if len(secret) != 32:
            raise _invalid("not a valid secp256k1 secret")
        return cls(secret)

    @classmethod
    def generate(cls) -> AgentKey:
        return cls(coincurve.PrivateKey().secret)

    def to_file_text(self) -> str:
        """The key file's text (write it with mode 0600)."""
        return '{"kind":"agent-secp256k1","secret":"%s"}\n' % self._key.secret.hex()

    def next_nonce(self) -> int:
        """The time in milliseconds, always above the last nonce this key handed out."""
        with self._lock:
            nonce = max(time.time_ns() // 1_000_000, self._last_nonce + 1)
            self._last_nonce = nonce
            return nonce

    def sign_request(self, method: str, path: str, body: bytes, wallet: str, nonce: int) -> str:
        """``0x`` + r‖s‖v (65 bytes, low s, v = 27|28) over :func:`request_digest`."""
        digest = request_digest(method, path, body, wallet, nonce)
        # libsecp256k1 signs deterministically (RFC 6979) and always with a low s.
        signature = self._key.sign_recoverable(digest, hasher=None)
        return "0x" + signature[:64].hex() + format(27 + signature[64], "02x")

    def headers(self, method: str, path: str, body: bytes, wallet: str) -> dict[str, str]:
        """The three headers of one signed request."""
        nonce = self.next_nonce()
        return {
            "Mandate-Agent": self.address,
            "Mandate-Agent-Nonce": str(nonce),
            "Mandate-Agent-Signature": self.sign_request(method, path, body, wallet, nonce),
        }

    def __repr__(self) -> str:
        return f"AgentKey({self.address})"

    __str__ = __repr__

    def __reduce__(self):  # no pickling a secret into a cache or a queue by accident
        raise TypeError("an AgentKey is not picklable")
