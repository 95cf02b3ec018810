"""Errors the command turns into a message and an exit code (2: usage, permissions, missing stack)."""

from __future__ import annotations


class UsageError(Exception):
    """The command cannot run as asked: a missing option, an unknown stack, a malformed argument."""


class PermissionDenied(Exception):
    """AWS refused a call; the message names the IAM action and the resource."""
