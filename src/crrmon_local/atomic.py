"""Every request to moto handled one at a time, as AWS applies each request atomically.

moto's backends are not safe under concurrent requests, and the functions overlap theirs on threads
(ingest's writes, the matcher's verdicts, the sweeper's checks). The race that shows: a DynamoDB write
numbers its stream record `len(records) + start` and then appends it, so two writes at once get one
sequence number; a reader following AFTER_SEQUENCE_NUMBER is then handed the same record again and
again, and every later record is numbered one too low. Conditional writes racing each other could both
pass their condition the same way. With this installed, requests still overlap in the functions; moto
handles them in turn, in-process (`mock_aws`) and in moto server alike.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.RLock()  # re-entrant: an emulator hook inside a request may make a request of its own
_installed = False


def install() -> None:
    """Serialise moto's request handling in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.core.botocore_stubber import BotocoreStubber
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        BotocoreStubber.process_request = _one_at_a_time(BotocoreStubber.process_request)
        DomainDispatcherApplication.__call__ = _one_at_a_time(DomainDispatcherApplication.__call__)
        _installed = True


def _one_at_a_time(handle):
    @functools.wraps(handle)
    def handled_alone(*args, **kwargs):
        with _lock:
            return handle(*args, **kwargs)

    return handled_alone
