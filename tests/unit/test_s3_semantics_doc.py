"""docs/s3-semantics.md: its conformance table has enough rows, and every test a row names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "s3-semantics.md"
HEADER = "| behaviour (what S3 does) | AWS documentation | the monitor's verdict / handling | test that proves it |"
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)(?:\[[^\]`]*\])?`")
AWS_LINK = re.compile(r"\[[^\]]+\]\((https://docs\.aws\.amazon\.com/[^)\s]+)\)")


def table_rows(text: str) -> list[list[str]]:
    """The conformance table's data rows, each as its four cells."""
    lines = text.splitlines()
    start = lines.index(HEADER)
    assert re.fullmatch(r"\|(-+\|){4}", lines[start + 1]), "the header is followed by its separator"
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a row of four cells: {line[:80]}"
        rows.append(cells)
    return rows


def defines(path: Path, name: str) -> bool:
    return re.search(rf"^(?:async )?def {re.escape(name)}\(", path.read_text(encoding="utf-8"), re.M) is not None


ROWS = table_rows(DOC.read_text(encoding="utf-8"))


def test_the_table_has_at_least_30_rows():
    assert len(ROWS) >= 30


def test_behaviours_are_not_repeated():
    behaviours = [row[0] for row in ROWS]
    assert len(set(behaviours)) == len(behaviours)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row[0][:60])
def test_every_row_rests_on_aws_documentation_and_names_a_test(row):
    behaviour, documentation, handling, tests = row
    assert behaviour and handling
    assert AWS_LINK.search(documentation), "an AWS documentation page, with its title and address"
    assert TEST_REF.search(tests), "at least one `path::test_name`"


@pytest.mark.parametrize(
    "path, name", sorted({m.groups() for row in ROWS for m in TEST_REF.finditer(row[3])}), ids=lambda v: v
)
def test_every_named_test_exists(path, name):
    file = ROOT / path
    assert file.is_file(), f"{path} does not exist"
    assert defines(file, name), f"{path} defines no {name}"


def test_the_parser_finds_a_missing_test(tmp_path):
    """The checks above can fail: a reference to a test that does not exist is caught."""
    fake = tmp_path / "test_fake.py"
    fake.write_text("def test_here():\n    pass\n\n\ndef helper_test_gone():\n    pass\n")
    assert defines(fake, "test_here")
    assert not defines(fake, "test_gone") and not defines(fake, "test_her")
    refs = TEST_REF.findall("`tests/unit/test_x.py::test_a[param-1]` and `tests/unit/test_x.py::test_b`")
    assert refs == [("tests/unit/test_x.py", "test_a"), ("tests/unit/test_x.py", "test_b")]
