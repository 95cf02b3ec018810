"""Configuration: read once from the environment variables that template.yaml sets.

Every function gets the same variables (template Globals), so one typed object serves all three.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction

from crrmon.rpo import DEFAULT_CLASS, RpoClass, classify, parse_policy
from crrmon.slo import check_window_days, parse_objective

VERIFY_MODES = ("size", "etag", "checksum")

# Environment variable names, one place. template.yaml sets exactly these (tests check both ways).
ENV_VARS = (
    "TABLE_NAME",
    "OVERDUE_INDEX_NAME",
    "TIMER_QUEUE_URL",
    "EVENTS_QUEUE_URL",
    "EVENTS_DLQ_URL",
    "DELIVERY_STREAM_NAME",
    "ALERT_TOPIC_ARN",
    "SOURCE_BUCKETS",
    "DESTINATION_BUCKETS",
    "TOPOLOGY_PARAMETER_NAME",
    "TOPOLOGY_REFRESH_SECONDS",
    "RPO_SECONDS",
    "RPO_CLASSES",
    "EXPECTED_THROUGHPUT_MBPS",
    "GIVE_UP_SECONDS",
    "VERIFY_MODE",
    "RECORD_RETENTION_HOURS",
    "HEAD_REQUESTS_PER_SECOND",
    "CANARY_INTERVAL_MINUTES",
    "SILENCE_MINUTES",
    "ALLOWED_ACCOUNTS",
    "READER_ROLE_ARNS",
    "ACCOUNT_ID",
    "FORWARDER_TOPIC_ARNS",
    "STACK_NAME",
    "SLO_OBJECTIVE",
    "SLO_WINDOW_DAYS",
    "INVENTORY_REPORTS",
)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Config:
    table_name: str
    overdue_index_name: str = "Overdue"
    timer_queue_url: str = ""
    events_queue_url: str = ""  # where reconciliation sends the events of versions the monitor missed
    events_dlq_url: str = ""  # where ingest parks bodies it cannot understand, with the reason
    delivery_stream_name: str = ""  # empty: archive disabled
    alert_topic_arn: str = ""  # empty: no digests
    source_buckets: tuple[str, ...] = ()
    destination_buckets: tuple[str, ...] = ()
    topology_parameter_name: str = ""
    topology_refresh_seconds: int = 300
    rpo_seconds: int = 900
    # RPO classes (crrmon.rpo), in order; a policy string is parsed. Empty: one RPO for every version.
    rpo_classes: tuple[RpoClass, ...] | str = ()
    expected_throughput_mbps: float = 50.0
    give_up_seconds: int = 86400
    verify_mode: str = "etag"
    record_retention_hours: int = 24
    head_requests_per_second: float = 20.0
    canary_interval_minutes: int = 0
    silence_minutes: int = 0
    allowed_accounts: tuple[str, ...] = field(default=())
    reader_role_arns: tuple[str, ...] = field(default=())  # read-only roles in accounts holding watched buckets
    account_id: str = ""  # the stack's own account
    forwarder_topic_arns: tuple[str, ...] = field(default=())  # topics whose messages need no confirming HEAD
    stack_name: str = ""  # the monitor's stack: alert digests name it in the `crrmon` command they suggest
    # The replication SLO (crrmon.slo): a percent of objects within their RPO; a string is parsed. None: off.
    slo_objective: Fraction | str | None = None
    slo_window_days: int = 30
    # Where the watched buckets' S3 Inventory reports are, "s3://BUCKET/PREFIX/{bucket}/CONFIGURATION-ID"
    # (crrmon.proof). Empty: the scheduled reconciliation lists the buckets instead.
    inventory_reports: str = ""
    # Where the EMF metrics go (Powertools reads the same variables): what the SLO's evaluation reads back.
    metrics_namespace: str = "CRRMonitor"
    service_name: str = "crr-monitor"

    def __post_init__(self) -> None:
        if not self.table_name:
            raise ValueError("TABLE_NAME is required")
        if self.verify_mode not in VERIFY_MODES:
            raise ValueError(f"VERIFY_MODE must be one of {VERIFY_MODES}, not {self.verify_mode!r}")
        if self.rpo_seconds < 1:
            raise ValueError("RPO_SECONDS must be at least 1")
        if isinstance(self.rpo_classes, str):
            object.__setattr__(self, "rpo_classes", parse_policy(self.rpo_classes))
        if isinstance(self.slo_objective, str):
            object.__setattr__(self, "slo_objective", parse_objective(self.slo_objective))
        check_window_days(self.slo_window_days)
        if self.inventory_reports and not (
            self.inventory_reports.startswith("s3://") and "{bucket}" in self.inventory_reports
        ):
            raise ValueError("INVENTORY_REPORTS must be s3://BUCKET/PREFIX/{bucket}/CONFIGURATION-ID")
        largest_rpo = max([self.rpo_seconds, *(c.rpo_seconds for c in self.rpo_classes)])
        if self.give_up_seconds < largest_rpo:
            # The template cannot compare two parameters; a give-up age below the RPO means "give up
            # at the deadline", which is what watching until the RPO and no longer does (the largest
            # RPO: items are kept at least the give-up age, and none may go before its deadline).
            object.__setattr__(self, "give_up_seconds", largest_rpo)
        if self.expected_throughput_mbps <= 0 or self.head_requests_per_second <= 0:
            raise ValueError("EXPECTED_THROUGHPUT_MBPS and HEAD_REQUESTS_PER_SECOND must be positive")

    def rpo_class(self, key: str, size: int | None) -> tuple[str, int]:
        """(class name, RPO in seconds) of a version: the first class matching it, else the default."""
        match = classify(self.rpo_classes, key, size)
        return (match.name, match.rpo_seconds) if match else (DEFAULT_CLASS, self.rpo_seconds)

    def accepts_account(self, account: str) -> bool:
        """Events may speak for this account: the stack's own or one of ALLOWED_ACCOUNTS (all, when
        neither is known: a configuration without accounts, as in local tests)."""
        known = set(self.allowed_accounts) | ({self.account_id} if self.account_id else set())
        return not known or account in known

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        return cls(
            table_name=get("TABLE_NAME"),
            overdue_index_name=get("OVERDUE_INDEX_NAME", "Overdue"),
            timer_queue_url=get("TIMER_QUEUE_URL"),
            events_queue_url=get("EVENTS_QUEUE_URL"),
            events_dlq_url=get("EVENTS_DLQ_URL"),
            delivery_stream_name=get("DELIVERY_STREAM_NAME"),
            alert_topic_arn=get("ALERT_TOPIC_ARN"),
            source_buckets=_csv(get("SOURCE_BUCKETS")),
            destination_buckets=_csv(get("DESTINATION_BUCKETS")),
            topology_parameter_name=get("TOPOLOGY_PARAMETER_NAME"),
            topology_refresh_seconds=int(get("TOPOLOGY_REFRESH_SECONDS", "300")),
            rpo_seconds=int(get("RPO_SECONDS", "900")),
            rpo_classes=get("RPO_CLASSES"),
            expected_throughput_mbps=float(get("EXPECTED_THROUGHPUT_MBPS", "50")),
            give_up_seconds=int(get("GIVE_UP_SECONDS", "86400")),
            verify_mode=get("VERIFY_MODE", "etag"),
            record_retention_hours=int(get("RECORD_RETENTION_HOURS", "24")),
            head_requests_per_second=float(get("HEAD_REQUESTS_PER_SECOND", "20")),
            canary_interval_minutes=int(get("CANARY_INTERVAL_MINUTES", "0")),
            silence_minutes=int(get("SILENCE_MINUTES", "0")),
            allowed_accounts=_csv(get("ALLOWED_ACCOUNTS")),
            reader_role_arns=_csv(get("READER_ROLE_ARNS")),
            account_id=get("ACCOUNT_ID"),
            forwarder_topic_arns=_csv(get("FORWARDER_TOPIC_ARNS")),
            stack_name=get("STACK_NAME"),
            slo_objective=get("SLO_OBJECTIVE"),
            slo_window_days=int(get("SLO_WINDOW_DAYS", "30")),
            inventory_reports=get("INVENTORY_REPORTS"),
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE", "CRRMonitor"),
            service_name=get("POWERTOOLS_SERVICE_NAME", "crr-monitor"),
        )
