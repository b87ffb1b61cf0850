"""The daemon's error envelope (docs/API.md, "Errors") as one exception."""

from __future__ import annotations

from typing import Any


class MandateError(Exception):
    """Every refusal, from the daemon or from this client.

    ``code`` is the daemon's stable code (``crates/mandate-core/src/error_code.rs``); a
    transport failure is ``PEER_UNAVAILABLE`` (status 0) and an answer that is not the
    envelope is ``INTERNAL``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        category: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: int | None = None,
        required_action: str = "",
        details: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        #: The HTTP status, or 0 when no answer arrived (or the client refused before sending).
        self.status = status
        #: The stable machine code, e.g. ``POLICY_DENIED``.
        self.code = code
        #: ``validation``, ``authentication``, ``policy``, …
        self.category = category
        #: What happened, in words (may quote outside data).
        self.message = message
        #: Whether the same request may succeed later unchanged.
        self.retryable = retryable
        #: Seconds to wait before retrying (``RATE_LIMITED``, ``DATABASE_UNAVAILABLE``), else None.
        self.retry_after = retry_after
        #: What to do, in a few words (fixed per code).
        self.required_action = required_action
        #: Per code: the policy decision for a denial, ``{"field"}`` for bad input, …
        self.details = details or {}
        #: The ``Idempotency-Key`` the failed send carried: retry with the same one.
        self.idempotency_key = idempotency_key

    @classmethod
    def from_envelope(cls, status: int, body: dict[str, Any], idempotency_key: str | None = None) -> MandateError:
        error = body["error"]
        return cls(
            status,
            error["code"],
            error["category"],
            error["message"],
            retryable=bool(error.get("retryable", False)),
            retry_after=error.get("retry_after"),
            required_action=error.get("required_action", ""),
            details=error.get("details") or {},
            idempotency_key=idempotency_key,
        )

    def to_envelope(self) -> dict[str, Any]:
        """The envelope as the daemon sends it (what a tool gives a model)."""
        return {
            "error": {
                "category": self.category,
                "code": self.code,
                "message": self.message,
                "required_action": self.required_action,
                "retryable": self.retryable,
                "retry_after": self.retry_after,
                "details": self.details,
            }
        }

    def __repr__(self) -> str:
        return f"MandateError({self.code}, status={self.status}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def is_envelope(value: Any) -> bool:
    """Whether a parsed JSON body is the daemon's error envelope."""
    error = value.get("error") if isinstance(value, dict) else None
    return isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("code", "category", "message"))
