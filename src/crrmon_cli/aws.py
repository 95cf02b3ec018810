"""AWS clients for one command run, and AWS's refusals and unreachable endpoints turned into one line each:
AccessDenied as "which action on which resource", the rest as "which endpoint, which call, what to do"."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    TokenRetrievalError,
)

from crrmon_cli.errors import PermissionDenied

DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
    "KMS.AccessDeniedException",
    "AWS.SimpleQueueService.AccessDenied",
}
# Credentials that AWS does not accept: not a missing permission, a login to renew.
CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestExpired",
}
# What to do about AWS's other answers, by error code.
GONE = "The monitor's resource is not there: is this the right --stack, --region or --local?"
FIXES = {
    "NoSuchBucket": "No such bucket here: check its name (and the stack's SourceBuckets, DestinationBuckets)",
    "ResourceNotFoundException": GONE,
    "AWS.SimpleQueueService.NonExistentQueue": GONE,
    "QueueDoesNotExist": GONE,
    "NotFoundException": GONE,
    "ThrottlingException": "AWS is throttling: wait a little and run it again",
    "SlowDown": "S3 is throttling: wait a little and run it again",
}
# The local demo's stack lives as long as its emulator: fail at once when it is gone.
LOCAL_CONNECT_TIMEOUT_S = 1

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
        local: bool = False,
    ):
        self.session = session or boto3.Session(region_name=region)
        self.region = region or self.session.region_name or "us-east-1"
        self.endpoint_url = endpoint_url
        self.local = local  # the local demo's emulator: one attempt, a short connect timeout
        self._clients: dict[tuple[str, str], Any] = {}
        self.last_call: dict[str, tuple[str, dict[str, Any]]] = {}
        self.current: tuple[str, str, str] = ("", "", "")  # service, operation, endpoint of the latest call

    def client(self, service: str, region: str | None = None):
        region = region or self.region
        cached = self._clients.get((service, region))
        if cached is None:
            if self.local or self.endpoint_url:
                # An emulator on this machine answers at once or not at all: no waiting through retries.
                config = BotoConfig(
                    connect_timeout=LOCAL_CONNECT_TIMEOUT_S, retries={"total_max_attempts": 1, "mode": "standard"}
                )
            else:
                config = BotoConfig(retries={"max_attempts": 5, "mode": "standard"})
            kwargs: dict[str, Any] = {"region_name": region, "config": config}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            cached = self.session.client(service, **kwargs)
            cached.meta.events.register("before-parameter-build.*.*", self._remember(service, cached))
            self._clients[(service, region)] = cached
        return cached

    def _remember(self, service: str, client):
        def remember(params, model, **_):
            self.last_call[model.name] = (service, dict(params))
            self.current = (service, model.name, client.meta.endpoint_url)

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


def explain(error: Exception, aws: Aws | None = None) -> str | None:
    """One line for an AWS answer or a connection failure: the endpoint, the call, and what to do.
    None for errors that are not AWS's or the network's. `aws` (the run's clients) knows the call."""
    service, operation, endpoint = aws.current if aws else ("", "", "")
    call = action_of(service, operation) if service else "the first call"
    if isinstance(error, ClientError):
        denied = aws.denied(error) if aws else None
        if denied is not None:
            return str(denied)
        code = error.response.get("Error", {}).get("Code", "") or "error"
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        operation = error.operation_name or operation
        service, params = aws.last_call.get(operation, (service, {})) if aws else (service, {})
        if code in CREDENTIAL_CODES:
            fix = "These credentials are refused: renew them (aws sso login, aws configure) or use another --profile"
        else:
            fix = FIXES.get(code, "See AWS's message; --debug shows the full error")
        at = f" ({endpoint.rstrip('/')})" if endpoint else ""
        action = action_of(service, operation) if service else operation
        resource = resource_of(service, params)
        return f"{action} on {resource}{at} answered {code}: {message.rstrip('.')}. {fix}"
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError | ReadTimeoutError):
        url = getattr(error, "kwargs", {}).get("endpoint_url") or endpoint or "the endpoint"
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.netloc}" if parts.netloc else url  # the endpoint, not the request's path
        return f"cannot reach {url} ({call}): {_reason(error)}. {_reach_fix(aws)}"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: give --profile NAME, set AWS_PROFILE or run `aws configure` / "
            "`aws sso login` (the local demo needs none: --local demo-output/stack.json)"
        )
    if isinstance(error, ProfileNotFound):
        return f"{error}: check --profile and AWS_PROFILE against ~/.aws/config (`aws configure list-profiles`)"
    if isinstance(error, TokenRetrievalError):
        return f"{error}: renew the login (`aws sso login`)"
    if isinstance(error, BotoCoreError):
        return f"{error} ({call} at {endpoint or 'AWS'}); --debug shows the full error"
    return None


def _reach_fix(aws: Aws | None) -> str:
    if aws is not None and aws.local:
        return (
            "The local demo's emulator is not running (the demo's stack lives only while it runs): start it "
            "with `make demo ARGS=--serve`, leave it running and try again from another shell"
        )
    if aws is not None and aws.endpoint_url:
        return "Check --endpoint-url and that the emulator there is running"
    region = f", now {aws.region}" if aws is not None else ""
    return f"Check the network (or proxy) and the region (--region{region})"


def _reason(error: Exception) -> str:
    """Why a connection failed, from the socket error under botocore's."""
    text = str(getattr(error, "kwargs", {}).get("error", "")) + " " + str(error)
    if "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "the host name does not resolve (no network, or no DNS)"
    if isinstance(error, ConnectTimeoutError):
        return "no connection within the timeout"
    if isinstance(error, ReadTimeoutError):
        return "no answer within the timeout"
    if isinstance(error, ConnectionClosedError):
        return "the connection was closed before an answer"
    return "could not connect"
