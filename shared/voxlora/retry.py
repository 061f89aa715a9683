"""Network errors retried with bounded exponential backoff, then one line (hf-fetch on the Hub).

Only what a retry can cure is retried: a dropped or refused connection, a timeout, a cut-short
response, an HTTP 429 or 5xx (found anywhere in the exception's chain, by class name, so neither
``requests`` nor ``httpx`` need to be imported). Anything else (a missing dataset, a gated repo, a
bug) fails at once. After `ATTEMPTS` tries the last error is raised for the caller to word.
"""

import logging
import time

log = logging.getLogger("voxlora")
ATTEMPTS = 5  # tries in all
FIRST_DELAY = 1.0  # seconds before the second try; doubled each time
MAX_DELAY = 30.0
NETWORK = {
    "ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutError", "TimeoutException",
    "ChunkedEncodingError", "RemoteDisconnected", "IncompleteRead", "ProtocolError", "NetworkError",
    "TransportError", "ConnectError", "ReadError", "RemoteProtocolError", "ServerDisconnectedError",
}  # fmt: skip
sleep = time.sleep  # tests replace it


def is_transient(e: BaseException) -> bool:
    """A network error a later try may not meet (see the module docstring)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if any(cls.__name__ in NETWORK for cls in type(e).__mro__):
            return True
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int) and (status == 429 or 500 <= status < 600):
            return True
        e = e.__cause__ or e.__context__
    return False


def delays(attempts: int = ATTEMPTS):
    """The waits between tries: 1, 2, 4, 8 s ... capped at `MAX_DELAY`.

    >>> list(delays(5))
    [1.0, 2.0, 4.0, 8.0]
    """
    for i in range(attempts - 1):
        yield min(FIRST_DELAY * 2**i, MAX_DELAY)


def retrying(fn, what: str, attempts: int | None = None):
    """``fn()``, tried again after a transient error; the last error is raised after ``attempts``."""
    waits = list(delays(attempts or ATTEMPTS))
    for i in range(len(waits) + 1):
        try:
            return fn()
        except Exception as e:
            if not is_transient(e) or i == len(waits):
                raise
            log.warning(
                "%s: %s; trying again in %g s (%d of %d)", what, _short(e), waits[i], i + 2, len(waits) + 1
            )
            sleep(waits[i])


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:200] + "…"
