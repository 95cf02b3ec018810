"""A moto DynamoDB table made from template.yaml's ReplicationTable: the keys and indexes the store's
tests write to and query are the ones a deployed stack has."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from crrmon_local.cfn import load_template
from crrmon_local.provision import Resolver

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture
def fake_credentials(monkeypatch):
    """Credentials and a region for moto: boto3 never looks further (no profile, no instance metadata)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def ddb(fake_credentials):
    template = load_template(TEMPLATE)
    resolver = Resolver(template, {"SourceBuckets": "b"}, stack_name="t", region="us-east-1", account="123456789012")
    properties = template["Resources"]["ReplicationTable"]["Properties"]
    table = {
        name: resolver.resolve(properties[name])
        for name in ("BillingMode", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes")
    }
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            BillingMode=table["BillingMode"],
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
        )
        yield client
