"""IB's message codes and what this broker does with each.

Codes: https://interactivebrokers.github.io/tws-api/message_codes.html. The session acts on
the connectivity codes, the event feed on the rest (order errors, warnings, notices); the
words an operator reads for each failure are written here, once.
"""

from __future__ import annotations

import logging
import re

CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED_DATA_LOST = 1101
CONNECTIVITY_RESTORED = 1102
CONNECTIVITY_CODES = frozenset({CONNECTIVITY_LOST, CONNECTIVITY_RESTORED_DATA_LOST, CONNECTIVITY_RESTORED})
CLIENT_ID_IN_USE = 326
NO_SECURITY_DEFINITION = 200
READ_ONLY_API = 321
# Max messages per second (100), historical-data pacing (162 with "pacing"), real-time query
# pacing (420): IB drops the request; repeated violations end with a disconnect.
PACING_CODES = frozenset({100, 420})
HISTORICAL_DATA_ERROR = 162
# A cancel that failed (order already filled, unknown or not cancellable). ib_insync marks
# the order "Cancelled" on any order error; for these the order's real state follows.
CANCEL_FAILED_CODES = frozenset({161, 10147, 10148, 10149})
# Informational: market-data farm connections OK/broken, "not subscribed" notes and the like.
INFORMATIONAL = range(2100, 2200)
FARM_TROUBLE = frozenset({2103, 2105, 2110, 2157})
ORDER_WARNINGS = frozenset({202, 399, 404, 434, 10167})

# Market data. 354: the login has no market-data subscription for the exchange; 10167:
# delayed data shown instead; 10197: another session of this login is using the data
# (competing live session); 366: a cancel for a request TWS no longer has.
NOT_SUBSCRIBED = 354
DELAYED_DATA = 10167
COMPETING_SESSION = 10197
NO_SUCH_HISTORICAL_QUERY = 366

_LOG_PREFIX = re.compile(r"^(Error|Warning) \d+, reqId -?\d+: ")

Notice = tuple[str, str, int | None]  # (kind, message, code) for the journal


def informational_level(code: int) -> int | None:
    """The log level of an informational code, None when the code is not informational.

    Farm connections broken (2103/2105/2157) or TWS-server link down (2110) only matter if
    they last; TWS restores them by itself and says so with 21xx again.
    """
    if code not in INFORMATIONAL:
        return None
    return logging.WARNING if code in FARM_TROUBLE else logging.DEBUG


def order_error_text(code: int, message: str) -> str:
    """IB's words for an order error, plus what to change where the fix is ours."""
    if code == READ_ONLY_API:
        return f"{message} (untick 'Read-Only API' in the TWS/Gateway API settings)"
    return message


def notice_for(code: int, message: str) -> Notice:
    """An error that belongs to no order of ours, as a journal notice."""
    if code in PACING_CODES or (code == HISTORICAL_DATA_ERROR and "pacing" in message.lower()):
        return ("pacing_violation", f"IB pacing violation (code {code}): {message}", code)
    if code == NO_SECURITY_DEFINITION:
        return ("unknown_contract", f"IB has no such contract (code {code}): {message}", code)
    return ("ibkr_error", f"IB error {code}: {message}", code)


def reason_from_log(message: str) -> str:
    """The reason in a trade log entry, without ib_insync's "Error 201, reqId 7: " prefix
    and the contract it appends."""
    return _LOG_PREFIX.sub("", message).split(", contract: ")[0]


def connect_failure(
    exc: BaseException,
    seen: list[tuple[int, str]],
    *,
    host: str,
    port: int,
    client_id: int,
    timeout: float,
) -> str:
    """One line saying why a connect failed and what to do about it."""
    where = f"Cannot connect to IB at {host}:{port}"
    codes = {code for code, _ in seen}
    if CLIENT_ID_IN_USE in codes:
        return f"{where}: client id {client_id} is already in use; set IBKR_CLIENT_ID to another number"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"{where}: connection refused, nothing is listening there "
            "(start TWS or IB Gateway; paper ports: TWS 7497, Gateway 4002)"
        )
    if isinstance(exc, TimeoutError):
        return (
            f"{where}: no API handshake within {timeout:g}s "
            "(enable 'ActiveX and Socket Clients' in the API settings, add this host to "
            f"Trusted IPs, and use a client id no other session uses, now {client_id})"
        )
    detail = str(exc) or type(exc).__name__
    if seen:
        detail = f"{detail}; IB said: {seen[-1][1]} (code {seen[-1][0]})"
    return f"{where}: {type(exc).__name__}: {detail}"


# --- the bar feed's policy for errors on its historical-data requests ---------------------
#
# An error that names one of the feed's requests is about one contract: its bars are
# reported missing with the reason (the engine waits, retries or marks the bar stale), never
# a traceback. ``retry`` says whether asking again can help: a contract IB does not know
# (200) or data the login is not subscribed to (354) stays missing until someone changes
# something, so the feed does not spend IB's request budget asking again. Connectivity
# (1100/1101/1102) is the session's: the whole feed pauses and re-subscribes (1101: TWS's
# data was lost) instead of reporting symbols.

DATA_PERMANENT = frozenset({NO_SECURITY_DEFINITION, NOT_SUBSCRIBED})
DATA_IGNORED = frozenset({DELAYED_DATA, NO_SUCH_HISTORICAL_QUERY})


def data_failure(code: int, message: str) -> tuple[str, bool] | None:
    """What a failed bar request means: (one-line reason, retry), or None when the code
    is not a failure of the request (a warning or a notice)."""
    if code in DATA_IGNORED or code in CONNECTIVITY_CODES or code in INFORMATIONAL:
        return None
    text = message.strip().rstrip(".")
    if code == HISTORICAL_DATA_ERROR and "pacing" in message.lower():
        return (f"IB pacing violation (code 162): {text}; asking again later", True)
    if code == NO_SECURITY_DEFINITION:
        return (f"IB has no such contract (code 200): {text}", False)
    if code == NOT_SUBSCRIBED:
        return (
            f"IB: no market data subscription (code 354): {text}; subscribe to the exchange's "
            "data in Client Portal (Settings > Market Data Subscriptions)",
            False,
        )
    if code == COMPETING_SESSION:
        return (f"IB: another session of this login is using the market data (code 10197): {text}", True)
    if code in PACING_CODES:
        return (f"IB pacing violation (code {code}): {text}; asking again later", True)
    return (f"IB error {code} on the bar request: {text}", True)
