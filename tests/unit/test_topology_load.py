"""`load_topology` and `bucket_region` on moto (in-process `mock_aws`): the rules read from each watched
bucket's replication configuration, or from the SSM override, and every bucket's region."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from crrmon.topology import Role, Rule, bucket_region, load_topology

ROLE_ARN = "arn:aws:iam::123456789012:role/replication"


@pytest.fixture
def aws(fake_credentials):
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1"), boto3.client("ssm", region_name="us-east-1")


def bucket(s3, name: str, region: str = "us-east-1", *, versioned: bool = True) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        boto3.client("s3", region_name=region).create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
        )
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def replicate(s3, source: str, *rules: dict) -> None:
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration={"Role": ROLE_ARN, "Rules": list(rules)})


def v2_rule(dest: str, *, id: str, prefix: str = "", priority: int = 1, account: str | None = None) -> dict:
    destination = {"Bucket": f"arn:aws:s3:::{dest}"}
    if account:
        destination["Account"] = account
    return {
        "ID": id,
        "Priority": priority,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": destination,
    }


def test_a_region_is_the_buckets_location_and_us_east_1_when_it_has_none(aws):
    s3, _ = aws
    bucket(s3, "home")
    bucket(s3, "away", "eu-west-1")
    assert bucket_region(s3, "home") == "us-east-1"
    assert bucket_region(s3, "away") == "eu-west-1"


def test_a_bucket_that_cannot_be_read_has_no_region(aws):
    s3, _ = aws
    assert bucket_region(s3, "no-such-bucket") is None


def test_rules_and_regions_are_read_from_each_watched_bucket(aws):
    # moto keeps a rule's ID, priority, status and destination; its filter prefix and DeleteMarkerReplication
    # answers differ with the moto version and with the emulator's patches (crrmon_local.emulator), so only the
    # fields moto keeps are compared: the others' parsing is tested in test_topology.py.
    s3, _ = aws
    bucket(s3, "src")
    bucket(s3, "dst", "eu-west-1")
    bucket(s3, "logs-dst", "us-west-2")
    bucket(s3, "quiet")  # watched, no replication configuration
    replicate(s3, "src", v2_rule("dst", id="all"), v2_rule("logs-dst", id="logs", priority=2))
    topo = load_topology(["src", "quiet"], s3=s3)
    kept = {
        bucket: [(r.id, r.destination_bucket, r.priority, r.enabled) for r in rules]
        for bucket, rules in topo.sources.items()
    }
    assert kept == {"src": [("all", "dst", 1, True), ("logs", "logs-dst", 2, True)], "quiet": []}
    assert topo.regions == {"src": "us-east-1", "quiet": "us-east-1", "dst": "eu-west-1", "logs-dst": "us-west-2"}
    assert topo.accounts == {}
    assert (topo.role("src"), topo.role("dst"), topo.role("quiet")) == (Role.SOURCE, Role.DESTINATION, Role.SOURCE)


def test_extra_destination_buckets_get_their_region_and_unreadable_ones_none(aws):
    s3, _ = aws
    bucket(s3, "src", versioned=False)
    bucket(s3, "extra", "ap-southeast-2", versioned=False)
    topo = load_topology(["src"], s3=s3, destination_buckets=["extra", "gone"])
    assert topo.sources == {"src": []}
    assert topo.regions == {"src": "us-east-1", "extra": "ap-southeast-2"}


def test_a_destination_of_another_account_is_known_by_its_account(aws):
    s3, _ = aws
    bucket(s3, "src")
    replicate(s3, "src", v2_rule("partner-dst", id="partner", account="210987654321"))
    topo = load_topology(["src"], s3=s3)
    assert topo.accounts == {"partner-dst": "210987654321"}
    assert topo.regions == {"src": "us-east-1"}  # the partner's bucket is not readable here


def test_a_watched_bucket_that_does_not_exist_is_an_error(aws):
    s3, _ = aws
    with pytest.raises(ClientError, match="NoSuchBucket"):
        load_topology(["no-such-bucket"], s3=s3)


def test_the_ssm_override_replaces_reading_the_buckets(aws):
    s3, ssm = aws
    override = {
        "sources": {
            "src": {
                "region": "eu-west-1",
                "account": "111111111111",
                "rules": [v2_rule("dst", id="to-dst"), v2_rule("dr", id="to-dr", prefix="db/", priority=3)],
            },
            "other-src": {},  # a source without rules watches nothing
        },
        "regions": {"dst": "eu-central-1", "src": "eu-west-2"},
        "accounts": {"dst": "222222222222"},
    }
    ssm.put_parameter(Name="/crrmon/topology", Value=json.dumps(override), Type="SecureString")
    topo = load_topology(["ignored"], s3=s3, ssm=ssm, parameter_name="/crrmon/topology")
    assert topo.sources == {
        "src": [
            Rule(id="to-dst", destination_bucket="dst", priority=1, delete_markers=True),
            Rule(id="to-dr", destination_bucket="dr", priority=3, prefix="db/", delete_markers=True),
        ],
        "other-src": [],
    }
    assert topo.regions == {"src": "eu-west-2", "dst": "eu-central-1"}  # "regions" has the last word
    assert topo.accounts == {"src": "111111111111", "dst": "222222222222"}


def test_an_override_without_regions_or_accounts(aws):
    s3, ssm = aws
    override = {"sources": {"src": {"region": "eu-west-1", "rules": [v2_rule("dst", id="r")]}}}
    ssm.put_parameter(Name="topo", Value=json.dumps(override), Type="String")
    topo = load_topology([], s3=s3, ssm=ssm, parameter_name="topo")
    assert (topo.regions, topo.accounts) == ({"src": "eu-west-1"}, {})
    assert [r.id for r in topo.sources["src"]] == ["r"]


def test_an_empty_override_watches_nothing(aws):
    s3, ssm = aws
    ssm.put_parameter(Name="topo", Value="{}", Type="String")
    topo = load_topology(["src"], s3=s3, ssm=ssm, parameter_name="topo")
    assert (topo.sources, topo.regions, topo.accounts) == ({}, {}, {})
