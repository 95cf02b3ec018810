"""Wiring for the Lambda handlers: configuration, AWS clients and domain objects, once per container.

Handlers stay thin: they build these objects on first use and hand every batch to the domain.
Tests build the same domain objects with clients of their own (moto) instead.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from crrmon.accounts import BucketClients
from crrmon.config import Config
from crrmon.evidence import Evidence, SharedBudget
from crrmon.ingest import Ingest
from crrmon.match import Matcher
from crrmon.metrics import Counters
from crrmon.publish import Publisher
from crrmon.reconcile import Reconciler
from crrmon.store import Store
from crrmon.sweep import Sweeper
from crrmon.topology import TopologyCache, load_topology

# Fail fast inside a Lambda's time budget; the batch mechanisms retry whatever is left.
BOTO_CONFIG = BotoConfig(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10, max_pool_connections=16
)
# Firehose without the SDK's retries: the publisher retries throttled records itself, with jitter,
# within its budget, and counts them (ArchiveThrottled); the SDK's retries would hide the throttling.
FIREHOSE_CONFIG = BOTO_CONFIG.merge(BotoConfig(retries={"max_attempts": 1, "mode": "standard"}))


def now() -> float:
    """The clock every domain object is given (epoch seconds)."""
    return time.time()


def sleep(seconds: float) -> None:
    """How domain objects wait (the publisher's backoff); tests move their clock instead."""
    time.sleep(seconds)


def reset() -> None:
    """Forget the container's cached configuration, clients and topology (a new environment)."""
    for cached in (config, client, regional_client, topology_cache, evidence):
        cached.cache_clear()


@cache
def config() -> Config:
    return Config.from_env()


@cache
def client(service: str):
    return boto3.client(service, config=FIREHOSE_CONFIG if service == "firehose" else BOTO_CONFIG)


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() not in ("true", "1")


def lambda_tracer():
    """Powertools' Tracer only when tracing is on: importing the X-Ray SDK costs ~250 ms of cold start.

    The one place tracing is chosen. The X-Ray SDK (the layer has it through Powertools' `tracer`
    extra) is in maintenance and reaches end of support on 2027-02-25; its successor, OpenTelemetry,
    would replace it here (and `capture_lambda_handler` in `lambda_entry`).
    """
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    # AWS calls are the functions' only I/O: patch botocore alone, not every library the SDK can
    # patch that happens to be importable.
    return Tracer(patch_modules=("botocore",))


def lambda_entry(work: Callable[..., Any], *, with_context: bool = False) -> Callable[[dict, Any], Any]:
    """A Lambda handler around `work(event, counters)` (`work(event, counters, context)` with
    `with_context`): structured logs with the Lambda context, the cold-start metric, tracing when
    enabled, and the batch's counters written as EMF at the end."""
    from aws_lambda_powertools import Logger, Metrics

    logger, metrics, tracer = Logger(), Metrics(), lambda_tracer()
    # Every metric goes out through Counters (one EMF document per dimension set); the handler's
    # Metrics object carries only the cold-start metric, so its "no metrics" warning is noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    def handler(event: dict, context: Any) -> Any:
        counters = Counters()
        try:
            return work(event, counters, context) if with_context else work(event, counters)
        finally:
            counters.flush()

    if tracer:
        handler = tracer.capture_lambda_handler(handler)
    handler = metrics.log_metrics(capture_cold_start_metric=True)(handler)
    return logger.inject_lambda_context(handler)


def function_name() -> str:
    """The running function (Lambda sets it). Several functions run in one process only locally, and
    there each keeps its own container state: its topology and its HEAD budget."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")


@cache
def topology_cache(function: str = "") -> TopologyCache:
    cfg = config()

    def load():
        return load_topology(
            cfg.source_buckets,
            s3=client("s3"),
            ssm=client("ssm") if cfg.topology_parameter_name else None,
            parameter_name=cfg.topology_parameter_name,
            destination_buckets=cfg.destination_buckets,
        )

    return TopologyCache(load, max_age=cfg.topology_refresh_seconds)


def store() -> Store:
    cfg = config()
    return Store(client("dynamodb"), cfg.table_name, cfg.overdue_index_name)


def publisher() -> Publisher:
    cfg = config()
    return Publisher(
        firehose=client("firehose") if cfg.delivery_stream_name else None,
        delivery_stream=cfg.delivery_stream_name,
        sns=client("sns") if cfg.alert_topic_arn else None,
        topic_arn=cfg.alert_topic_arn,
        default_rpo_s=cfg.rpo_seconds,
        rpo_classes=bool(cfg.rpo_classes),
        stack_name=cfg.stack_name,
        clock=now,
        sleep=sleep,
    )


@cache
def evidence(function: str = "", *, other_accounts: bool = True) -> Evidence:
    """HEADs for one function. Only the sweeper reads buckets of other accounts (through READER_ROLE_ARNS);
    ingest's HEADs (buckets both source and destination) use its own role, and a refusal is handled."""
    cfg = config()
    clients = None
    if cfg.reader_role_arns and other_accounts:
        topology = topology_cache(function)
        clients = BucketClients(
            client("s3"),
            roles=cfg.reader_role_arns,
            account_of=lambda bucket: topology.get().accounts.get(bucket),
            sts=lambda: client("sts"),
            make_client=lambda credentials: boto3.client(
                "s3",
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                config=BOTO_CONFIG,
            ),
        )
    return Evidence(
        client("s3"),
        SharedBudget(store(), cfg.head_requests_per_second, clock=lambda: now()),
        checksum=cfg.verify_mode == "checksum",
        clients=clients,
    )


@cache
def regional_client(service: str, region: str):
    return boto3.client(service, region_name=region, config=BOTO_CONFIG)


def ingest(counters: Counters) -> Ingest:
    return Ingest(
        config(),
        store(),
        topology_cache(function_name()),
        evidence(function_name(), other_accounts=False),
        client("sqs"),
        counters,
        now,
        sns=lambda region: regional_client("sns", region),
    )


def matcher(counters: Counters) -> Matcher:
    return Matcher(config(), store(), publisher(), client("sqs"), counters, now)


def sweeper(counters: Counters) -> Sweeper:
    return Sweeper(
        config(),
        store(),
        evidence(function_name()),
        topology_cache(function_name()),
        publisher(),
        client("sqs"),
        counters,
        now,
        cloudwatch=client("cloudwatch") if config().slo_objective else None,
    )


def reconciler(counters: Counters, context: Any) -> Reconciler:
    """The scheduled reconciliation. Replayed events carry this function's account, as S3's would. With
    InventoryReports, the daily proof from S3 Inventory reports stands in for the listing (crrmon.proof)."""
    cfg = config()
    account, region = context.invoked_function_arn.split(":")[4], os.environ.get("AWS_REGION", "")
    prove = None
    if cfg.inventory_reports:
        from crrmon import proof

        prover = proof.Prover(
            store=store(),
            s3=client("s3"),
            sqs=client("sqs"),
            counters=counters,
            clock=now,
            account=account,
            region=region,
            events_queue_url=cfg.events_queue_url,
            record_retention_hours=cfg.record_retention_hours,
            archive=publisher().archive if cfg.delivery_stream_name else None,
        )
        prove = functools.partial(proof.prove_bucket, prover, proof.Reports(cfg.inventory_reports))
    return Reconciler(
        cfg,
        store(),
        client("s3"),
        topology_cache(function_name()),
        client("sqs"),
        counters,
        now,
        account=account,
        region=region,
        prove=prove,
    )
