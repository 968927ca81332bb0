"""Bounded retries for transient network failures of the signing services (TSA, OCSP/CRL
responders, CSC service).

A failure is transient when the service could not be reached or answered "try later":
connection refused or reset, a timeout, HTTP 5xx or 429. Anything else — HTTP 4xx, a refused
PIN or password (``BadPinError``), a malformed answer — is raised at once: retrying a wrong
PIN would lock the token. After the last attempt the caller raises its typed error (55 for the
TSA, 57 for the others), which a watch station treats as "retry later".

Twenty lines instead of ``tenacity``/``stamina``: one policy (attempts, exponential backoff),
one predicate, async only; a dependency would bring more than is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from digitize.errors import BadPinError

T = TypeVar("T")


class TransientHttpError(Exception):
    """A service answered with a status that means "try later" (5xx, 429)."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.url = url


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2  # extra attempts after the first
    backoff_s: float = 0.5  # wait before retry n: backoff_s * 2**(n-1)
    max_backoff_s: float = 8.0


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a network failure worth another attempt."""
    import aiohttp

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, BadPinError):
            return False
        if isinstance(cur, TransientHttpError):
            return True
        if isinstance(cur, aiohttp.ClientResponseError):
            return cur.status >= 500 or cur.status == 429
        if isinstance(cur, aiohttp.ClientConnectionError | asyncio.TimeoutError | TimeoutError):
            return True
        if isinstance(cur, ConnectionError):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    transient: Callable[[BaseException], bool] = is_transient,
) -> T:
    """``await attempt()``, again after a pause while it fails transiently, at most
    ``1 + policy.retries`` times; the last failure propagates unchanged."""
    for n in range(policy.retries + 1):
        try:
            return await attempt()
        except Exception as e:
            if n == policy.retries or not transient(e):
                raise
        await asyncio.sleep(min(policy.backoff_s * 2**n, policy.max_backoff_s))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
