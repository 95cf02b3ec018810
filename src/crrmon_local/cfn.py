"""Read CloudFormation/SAM templates written in YAML.

`yaml.safe_load` rejects the short-form intrinsic tags (`!Ref`, `!Sub`, ...). `CfnLoader` turns each
into the long JSON form CloudFormation itself uses (`{"Ref": x}`, `{"Fn::Sub": ...}`), so a loaded
template is the same data whichever form its author wrote. Dates stay strings, as in CloudFormation
(`AWSTemplateFormatVersion: 2010-09-09` is a string there, not a date).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["INTRINSIC_TAGS", "CfnLoader", "load_template", "loads_template"]

# tag -> long form key
INTRINSIC_TAGS = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    "!Sub": "Fn::Sub",
    "!GetAtt": "Fn::GetAtt",
    "!If": "Fn::If",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!And": "Fn::And",
    "!Or": "Fn::Or",
    "!Join": "Fn::Join",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!FindInMap": "Fn::FindInMap",
    "!ImportValue": "Fn::ImportValue",
    "!Base64": "Fn::Base64",
    "!Cidr": "Fn::Cidr",
    "!GetAZs": "Fn::GetAZs",
}


# libyaml's parser where PyYAML was built with it (about ten times faster on template.yaml), else PyYAML's own.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CfnLoader(_SafeLoader):
    """A SafeLoader that knows CloudFormation's short-form intrinsic function tags."""


# CloudFormation reads unquoted dates and times as strings.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _node_value(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _intrinsic(key: str):
    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        value = _node_value(loader, node)
        if key == "Fn::GetAtt" and isinstance(value, str):
            # !GetAtt Resource.Attribute (the attribute may itself contain dots: Endpoint.Address)
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {key: value}

    return construct


for _tag, _key in INTRINSIC_TAGS.items():
    CfnLoader.add_constructor(_tag, _intrinsic(_key))


def loads_template(text: str) -> dict[str, Any]:
    """Parse template text (YAML or JSON) into its long-form dictionary."""
    data = yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader: no arbitrary objects
    if not isinstance(data, dict):
        raise ValueError("a CloudFormation template must be a mapping at the top level")
    return data


def load_template(path: str | Path) -> dict[str, Any]:
    """Read and parse the template at `path`."""
    return loads_template(Path(path).read_text(encoding="utf-8"))


def translate(
    template: dict[str, Any],
    parameters: dict[str, str],
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    stack_name: str = "crr-monitor",
) -> dict[str, Any]:
    """The CloudFormation template SAM's translator makes of a SAM template (functions -> roles, ...).

    Code locations are replaced by S3 URIs, as after `sam package`; managed policies are not looked
    up (no AWS call), so policies given by name stay names.
    """
    import copy
    import os

    from samtranslator.translator.transform import transform

    tpl = copy.deepcopy(template)
    for resource in tpl["Resources"].values():
        props = resource.get("Properties", {})
        if "CodeUri" in props:
            props["CodeUri"] = "s3://example-artifacts/function.zip"
        if "ContentUri" in props:
            props["ContentUri"] = "s3://example-artifacts/layer.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    values = {
        **parameters,
        "AWS::Region": region,
        "AWS::Partition": "aws",
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
    }
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator reads the region from the environment
    try:
        return transform(tpl, values, NoManagedPolicies())
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
