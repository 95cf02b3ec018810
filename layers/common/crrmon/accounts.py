"""Reading buckets of other accounts: through each account's read-only role, one session per container.

The forwarder stack, deployed in an account that holds watched buckets, creates a role the monitor's
functions may assume (READER_ROLE_ARNS lists them). A HEAD of a version in a bucket of that account
goes through the role; every other bucket is read with the function's own role.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

SESSION_NAME = "crr-monitor"
RENEW_BEFORE_S = 300  # assume the role again this long before its credentials expire
DURATION_S = 3600


def account_of_role(role_arn: str) -> str:
    """`arn:aws:iam::123456789012:role/name` -> `123456789012`."""
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[4].isdigit() or len(parts[4]) != 12:
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    return parts[4]


class BucketClients:
    """The S3 client to read a bucket with. Thread-safe; credentials are renewed before they expire."""

    def __init__(
        self,
        default: Any,
        *,
        roles: tuple[str, ...],
        account_of: Callable[[str], str | None],
        sts: Callable[[], Any],
        make_client: Callable[[dict[str, Any]], Any],
        clock: Callable[[], float] = time.time,
    ):
        self.default = default
        self.roles = {account_of_role(arn): arn for arn in roles}
        self.account_of = account_of
        self.sts = sts
        self.make_client = make_client
        self.clock = clock
        self._cache: dict[str, tuple[float, Any]] = {}  # role ARN -> (expires at, client)
        self._lock = threading.Lock()

    def __call__(self, bucket: str) -> Any:
        account = self.account_of(bucket)
        role = self.roles.get(account) if account else None
        if role is None:
            return self.default
        with self._lock:
            cached = self._cache.get(role)
            if cached and cached[0] - RENEW_BEFORE_S > self.clock():
                return cached[1]
            credentials = self.sts().assume_role(
                RoleArn=role, RoleSessionName=SESSION_NAME, DurationSeconds=DURATION_S
            )["Credentials"]
            expires = credentials["Expiration"]
            expires_s = expires.timestamp() if hasattr(expires, "timestamp") else self.clock() + DURATION_S
            client = self.make_client(credentials)
            self._cache[role] = (expires_s, client)
            return client
