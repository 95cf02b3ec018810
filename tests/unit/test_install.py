"""The first hour of a new operator: installing, building and deploying print no needless warnings,
refuse what cannot work, and the docs name what the tools really offer."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from crrmon_local.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_license_is_an_spdx_expression():
    """A `license` table makes setuptools print its deprecation warning on every install (PEP 639)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert all((ROOT / name).is_file() for name in pyproject["project"]["license-files"])
    [setuptools] = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)", setuptools)
    assert minimum and int(minimum.group(1)) >= 77  # the first setuptools that reads SPDX license strings


def test_every_function_has_a_requirements_file():
    """Without one, `sam build` warns "requirements.txt file not found" once per function."""
    functions = [
        r
        for r in load_template(ROOT / "template.yaml")["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert functions
    for function in functions:
        requirements = ROOT / function["Properties"]["CodeUri"] / "requirements.txt"
        assert requirements.is_file(), requirements
        # the functions import only the common layer: nothing to install, so nothing to duplicate
        assert not [line for line in requirements.read_text().splitlines() if line and not line.startswith("#")]


def test_sam_builds_without_its_cache():
    """With --cached, functions without dependencies make SAM warn on every build that their dependency
    folders are missing."""
    assert "--cached" not in (ROOT / "scripts" / "sam-build").read_text().replace("Not --cached", "")
    build = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]["build"]["parameters"]
    assert not build.get("cached")


def _bucket_list_accepted(parameter: dict, value: str) -> bool:
    """CloudFormation's checks of a CommaDelimitedList value: MinLength on the whole value, AllowedPattern on
    each entry."""
    if len(value) < int(parameter.get("MinLength", 0)):
        return False
    entries = value.split(",") if value else []
    return all(re.fullmatch(parameter["AllowedPattern"], entry) for entry in entries)


def test_source_buckets_may_not_be_empty():
    """`sam deploy --guided` took an empty SourceBuckets (an empty list has no entry to match the pattern)."""
    parameter = load_template(ROOT / "template.yaml")["Parameters"]["SourceBuckets"]
    assert not _bucket_list_accepted(parameter, "")
    assert not _bucket_list_accepted(parameter, "Not_A_Bucket")
    assert _bucket_list_accepted(parameter, "demo-src-use1")
    assert _bucket_list_accepted(parameter, "demo-src-use1,demo-bidi-a-use1")
    assert "at least one" in parameter["ConstraintDescription"]


def test_readme_says_where_make_puts_the_sam_cli():
    deploy = (ROOT / "README.md").read_text().split("## Deploy", 1)[1].split("\n## ", 1)[0]
    assert ".venv/bin/sam" in deploy


def test_every_demo_flag_is_in_the_flag_table():
    from crrmon_local.demo import parser

    table = (ROOT / "docs" / "demo.md").read_text().split("## Flags", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(--[a-z-]+)`", table, flags=re.MULTILINE))
    flags = {flag for action in parser()._actions for flag in action.option_strings if flag.startswith("--")}
    assert flags - {"--help"} == documented


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_build_output_is_tracked():
    tracked = subprocess.run(
        ["git", "ls-files", "--", "*.egg-info/*"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
