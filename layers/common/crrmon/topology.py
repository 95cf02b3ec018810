"""Which buckets replicate where: the watched source buckets and their replication rules.

Rules come from GetBucketReplication on each watched source bucket, or from a JSON override kept in
SSM Parameter Store (cross-account set-ups where the monitor cannot read the source's configuration).
The override has the same rule shape S3 returns:

    {"sources": {"<bucket>": {"region": "eu-west-1", "account": "<12 digits, optional>",
                              "rules": [<ReplicationConfiguration.Rules[]>]}},
     "regions": {"<destination bucket>": "eu-central-1"},
     "accounts": {"<bucket of another account>": "<12 digits>"}}

A bucket's account matters only where it is not the monitor's: HEADs of its versions go through the
read-only role of that account (crrmon.accounts). Rules name it as Destination.Account.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from botocore.exceptions import ClientError

LIFECYCLE_EXPIRATION = "Lifecycle Expiration"


class Role(StrEnum):
    SOURCE = "source"
    DESTINATION = "destination"
    BOTH = "both"  # bidirectional or chained: the version's replication status decides


@dataclass(frozen=True)
class Rule:
    id: str
    destination_bucket: str
    priority: int = 0
    prefix: str = ""
    has_tag_filter: bool = False
    enabled: bool = True
    delete_markers: bool = False
    sse_kms: bool = False  # SourceSelectionCriteria.SseKmsEncryptedObjects enabled
    destination_account: str | None = None  # Destination.Account: set for a bucket of another account

    @classmethod
    def from_s3(cls, raw: dict, index: int = 0) -> Rule:
        """One rule as GetBucketReplication returns it (V1 rules have a top-level Prefix, V2 a Filter)."""
        filt = raw.get("Filter")
        if filt is None:  # V1 rule: delete markers are always replicated, no tag filters
            prefix, tags, delete_markers = raw.get("Prefix", ""), False, True
        else:
            and_ = filt.get("And") or {}
            prefix = filt.get("Prefix", and_.get("Prefix", "")) or ""
            tags = bool(filt.get("Tag") or and_.get("Tags"))
            delete_markers = (raw.get("DeleteMarkerReplication") or {}).get("Status") == "Enabled"
        criteria = (raw.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {}
        return cls(
            id=raw.get("ID") or f"rule-{index}",
            destination_bucket=bucket_name(raw["Destination"]["Bucket"]),
            priority=int(raw.get("Priority", 0)),
            prefix=prefix,
            has_tag_filter=tags,
            enabled=raw.get("Status", "Enabled") == "Enabled",
            delete_markers=delete_markers and not tags,
            sse_kms=criteria.get("Status") == "Enabled",
            destination_account=raw["Destination"].get("Account") or None,
        )


@dataclass(frozen=True)
class Expectation:
    """One destination where a source version is expected to land, and why."""

    destination_bucket: str
    rule_id: str
    destination_region: str | None
    out_of_scope: str | None = None  # set when the rule certainly does not replicate this version


@dataclass
class Topology:
    sources: dict[str, list[Rule]] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # bucket -> owning account, where another's

    def __post_init__(self) -> None:
        self._sources_of: dict[str, set[str]] = {}
        for source, rules in self.sources.items():
            for rule in rules:
                self._sources_of.setdefault(rule.destination_bucket, set()).add(source)
                if rule.destination_account:
                    self.accounts.setdefault(rule.destination_bucket, rule.destination_account)

    def role(self, bucket: str) -> Role | None:
        is_source, is_destination = bucket in self.sources, bucket in self._sources_of
        if is_source and is_destination:
            return Role.BOTH
        if is_source:
            return Role.SOURCE
        if is_destination:
            return Role.DESTINATION
        return None

    def sources_of(self, destination_bucket: str) -> tuple[str, ...]:
        return tuple(sorted(self._sources_of.get(destination_bucket, ())))

    def pairs(self) -> list[tuple[str, str]]:
        """Every (source, destination) pair some enabled rule creates."""
        return sorted({(s, r.destination_bucket) for s, rules in self.sources.items() for r in rules if r.enabled})

    def expectations(
        self,
        source_bucket: str,
        key: str,
        *,
        delete_marker: bool = False,
        reason: str | None = None,
        encryption: str | None = None,
    ) -> list[Expectation]:
        """Destinations a new version of `key` in `source_bucket` should reach.

        Per destination the enabled rule with the highest priority whose prefix matches decides (S3's
        own precedence). Delete markers are expected only where that rule replicates them (never with
        a tag filter, never when lifecycle expiration made them).
        """
        best: dict[str, Rule] = {}
        for rule in self.sources.get(source_bucket, ()):
            if not rule.enabled or not key.startswith(rule.prefix):
                continue
            current = best.get(rule.destination_bucket)
            if current is None or rule.priority > current.priority:
                best[rule.destination_bucket] = rule
        out = []
        for dest, rule in sorted(best.items()):
            if delete_marker and (not rule.delete_markers or reason == LIFECYCLE_EXPIRATION):
                continue
            oos = None
            if encryption in ("aws:kms", "aws:kms:dsse") and not rule.sse_kms:
                oos = "SSE-KMS object and the rule does not replicate SSE-KMS objects"
            out.append(
                Expectation(
                    destination_bucket=dest,
                    rule_id=rule.id,
                    destination_region=self.regions.get(dest),
                    out_of_scope=oos,
                )
            )
        return out


def bucket_name(bucket_or_arn: str) -> str:
    """`arn:aws:s3:::name` or `name` -> `name`."""
    return bucket_or_arn.rsplit(":", 1)[-1] if bucket_or_arn.startswith("arn:") else bucket_or_arn


def rules_from_configuration(configuration: dict) -> list[Rule]:
    return [Rule.from_s3(raw, i) for i, raw in enumerate(configuration.get("Rules", ()))]


def bucket_region(s3, bucket: str) -> str | None:
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError:
        return None
    return location or "us-east-1"


def load_topology(
    source_buckets: Iterable[str],
    *,
    s3,
    ssm=None,
    parameter_name: str = "",
    destination_buckets: Iterable[str] = (),
) -> Topology:
    """Read the rules of every watched bucket (GetBucketReplication) or the SSM override."""
    if parameter_name:
        raw = json.loads(ssm.get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]["Value"])
        sources = {
            b: rules_from_configuration({"Rules": v.get("rules", [])}) for b, v in raw.get("sources", {}).items()
        }
        regions = {b: v["region"] for b, v in raw.get("sources", {}).items() if v.get("region")}
        regions.update(raw.get("regions", {}))
        accounts = {b: v["account"] for b, v in raw.get("sources", {}).items() if v.get("account")}
        accounts.update(raw.get("accounts", {}))
        return Topology(sources=sources, regions=regions, accounts=accounts)
    sources: dict[str, list[Rule]] = {}
    for bucket in source_buckets:
        try:
            configuration = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ReplicationConfigurationNotFoundError":
                raise
            configuration = {}
        sources[bucket] = rules_from_configuration(configuration)
    buckets = set(sources) | {r.destination_bucket for rules in sources.values() for r in rules}
    buckets |= set(destination_buckets)
    regions = {b: region for b in sorted(buckets) if (region := bucket_region(s3, b))}
    return Topology(sources=sources, regions=regions)


class TopologyCache:
    """Keeps one Topology per container; refreshes it when old, or on an unknown bucket (rate-limited)."""

    def __init__(self, loader: Callable[[], Topology], *, max_age: float, min_refresh_interval: float = 10.0):
        self._loader = loader
        self._max_age = max_age
        self._min_interval = min_refresh_interval
        self._topology: Topology | None = None
        self._loaded_at = float("-inf")

    def get(self) -> Topology:
        if self._topology is None or time.monotonic() - self._loaded_at > self._max_age:
            self._reload()
        return self._topology

    def refresh_for_unknown(self) -> Topology:
        """Reload once for an event about a bucket the topology does not know, at most every few seconds."""
        if time.monotonic() - self._loaded_at >= self._min_interval:
            self._reload()
        return self.get()

    def _reload(self) -> None:
        self._topology = self._loader()
        self._loaded_at = time.monotonic()
