"""AWS clients for one command run, and AccessDenied turned into "which action on which resource"."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from crrmon_cli.errors import PermissionDenied

DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
    "KMS.AccessDeniedException",
    "AWS.SimpleQueueService.AccessDenied",
    "InvalidClientTokenId",
    "ExpiredToken",
}

# S3 operations whose IAM action is not "s3:<operation name>".
S3_ACTIONS = {
    "HeadObject": "s3:GetObjectVersion",
    "GetBucketReplication": "s3:GetReplicationConfiguration",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketLocation": "s3:GetBucketLocation",
}
# IAM prefixes that differ from botocore's service names.
PREFIXES = {"s3control": "s3", "dynamodbstreams": "dynamodb", "events": "events", "athena": "athena"}


def action_of(service: str, operation: str) -> str:
    if service == "s3" and operation in S3_ACTIONS:
        return S3_ACTIONS[operation]
    return f"{PREFIXES.get(service, service)}:{operation}"


def resource_of(service: str, params: dict[str, Any]) -> str:
    if service == "s3" and "Bucket" in params:
        key = params.get("Key")
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else "")
    if "TableName" in params:
        index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
        return f"table {params['TableName']}{index}"
    if "RequestItems" in params:
        return "table " + ", ".join(sorted(params["RequestItems"]))
    for name in ("QueueUrl", "SourceArn", "TopicArn", "KeyId", "StackName", "TargetArn", "Name", "AccountId"):
        if params.get(name):
            return str(params[name])
    if service == "athena":
        return f"workgroup {params.get('WorkGroup', 'primary')}"
    return "*"


class Aws:
    """Clients of one session, remembering each operation's parameters to explain AccessDenied."""

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ):
        self.session = session or boto3.Session(region_name=region)
        self.region = region or self.session.region_name or "us-east-1"
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str], Any] = {}
        self.last_call: dict[str, tuple[str, dict[str, Any]]] = {}

    def client(self, service: str, region: str | None = None):
        region = region or self.region
        cached = self._clients.get((service, region))
        if cached is None:
            kwargs: dict[str, Any] = {
                "region_name": region,
                "config": BotoConfig(retries={"max_attempts": 5, "mode": "standard"}),
            }
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            cached = self.session.client(service, **kwargs)
            cached.meta.events.register("before-parameter-build.*.*", self._remember(service))
            self._clients[(service, region)] = cached
        return cached

    def _remember(self, service: str):
        def remember(params, model, **_):
            self.last_call[model.name] = (service, dict(params))

        return remember

    def denied(self, error: ClientError) -> PermissionDenied | None:
        """A PermissionDenied naming the action and resource, when `error` is an access denial."""
        code = error.response.get("Error", {}).get("Code", "")
        if code not in DENIED_CODES:
            return None
        operation = error.operation_name
        service, params = self.last_call.get(operation, ("", {}))
        action = action_of(service, operation) if service else operation
        message = error.response.get("Error", {}).get("Message", "")
        return PermissionDenied(
            f"permission denied: {action} on {resource_of(service, params)} ({code}: {message}). "
            f"Grant {action} to the identity running crrmon."
        )
