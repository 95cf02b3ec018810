"""RPO classes (crrmon.rpo): the policy's syntax, its errors, and which class a version is in."""

import re
from pathlib import Path

import pytest

from crrmon import rpo
from crrmon.config import Config
from crrmon.rpo import MAX_CLASSES, PolicyError, RpoClass, classify, parse_policy
from crrmon.store import Store
from crrmon_local.cfn import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
EXAMPLE = "invoices:prefix=invoices/,rpo=5m;logs:prefix=logs/,rpo=1h;large:min=1GiB,rpo=2h"


def test_the_readme_example_parses_into_ordered_classes_with_units():
    assert parse_policy(EXAMPLE) == (
        RpoClass("invoices", 300, prefix="invoices/"),
        RpoClass("logs", 3600, prefix="logs/"),
        RpoClass("large", 7200, min_size=2**30),
    )


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        *[("7", 7), ("7B", 7), ("2KB", 2000), ("3MB", 3 * 10**6), ("1GB", 10**9), ("1TB", 10**12)],
        *[("2KiB", 2048), ("3MiB", 3 * 2**20), ("1GiB", 2**30), ("1TiB", 2**40)],
    ],
)
def test_size_units(size, expected):
    [c] = parse_policy(f"c:min={size},rpo=1")
    assert c.min_size == expected


@pytest.mark.parametrize(("rpo_text", "seconds"), [("45", 45), ("45s", 45), ("5m", 300), ("2h", 7200), ("1d", 86400)])
def test_rpo_units(rpo_text, seconds):
    assert parse_policy(f"c:prefix=a,rpo={rpo_text}")[0].rpo_seconds == seconds


def test_no_policy_is_no_classes_and_spaces_and_a_last_semicolon_are_tolerated():
    assert parse_policy("") == ()
    assert parse_policy(" a : prefix = x/ , rpo = 60 ; ") == (RpoClass("a", 60, prefix="x/"),)


def test_the_first_matching_class_wins():
    classes = parse_policy("wide:prefix=logs/,rpo=3600;narrow:prefix=logs/audit/,rpo=60;other:prefix=l,rpo=5")
    assert classify(classes, "logs/audit/1", 10).name == "wide"  # listed first, though "narrow" also matches
    assert classify(classes, "lists/1", 10).name == "other"
    assert classify(classes, "data/1", 10) is None


def test_size_bands_include_min_and_exclude_max():
    small, mid, large = parse_policy("small:max=1KiB,rpo=60;mid:min=1KiB,max=1MiB,rpo=300;large:min=1MiB,rpo=7200")
    assert [classify((small, mid, large), "k", size).name for size in (0, 1023, 1024, 2**20 - 1, 2**20)] == [
        "small",
        "small",
        "mid",
        "mid",
        "large",
    ]


def test_prefix_and_band_together_both_have_to_match():
    [c] = parse_policy("big-video:prefix=video/,min=1GB,rpo=2h")
    assert c.matches("video/a.mp4", 10**9)
    assert not c.matches("video/a.mp4", 10**9 - 1)
    assert not c.matches("audio/a.mp3", 10**10)


def test_a_band_never_matches_a_version_of_unknown_size_which_falls_to_the_next_class():
    classes = parse_policy("large:min=1GiB,rpo=2h;logs:prefix=logs/,rpo=1h")
    assert classify(classes, "logs/x", None).name == "logs"
    assert classify(classes, "logs/x", 2**30).name == "large"
    assert classify(classes, "data/x", None) is None


def test_versions_no_class_matches_are_in_the_default_class_with_rpo_seconds():
    cfg = Config(table_name="t", rpo_seconds=900, rpo_classes="invoices:prefix=invoices/,rpo=5m")
    assert cfg.rpo_class("invoices/1.pdf", 10) == ("invoices", 300)
    assert cfg.rpo_class("images/1.png", 10) == ("default", 900)
    assert Config(table_name="t", rpo_seconds=120).rpo_class("invoices/1.pdf", 10) == ("default", 120)


def test_the_configuration_reads_the_policy_and_keeps_items_until_the_largest_rpo():
    cfg = Config.from_env(
        {"TABLE_NAME": "t", "RPO_SECONDS": "900", "GIVE_UP_SECONDS": "3600", "RPO_CLASSES": "slow:prefix=a,rpo=2h"}
    )
    assert cfg.rpo_classes == (RpoClass("slow", 7200, prefix="a"),)
    assert cfg.give_up_seconds == 7200  # never given up before its deadline, nor removed by TTL before it
    assert Config.from_env({"TABLE_NAME": "t", "RPO_CLASSES": ""}).rpo_classes == ()


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "a:prefix=x,rpo=60;b:prefix=y,colour=red,rpo=60",
            r"class 2 \('b:prefix=y,colour=red,rpo=60'\): unknown field 'colour=red'",
        ),
        ("a:prefix=x,rpo", r"class 1 .*unknown field 'rpo'"),
        ("a:prefix=x,rpo=0", r"class 1 .*rpo '0' must be from 1 second"),
        ("a:prefix=x,rpo=31d", r"rpo '31d' must be from 1 second to 30 days"),
        ("a:prefix=x,rpo=5x", r"rpo '5x' is not a whole number"),
        ("a:prefix=x,rpo=-5", r"rpo '-5' is not a whole number"),
        ("a:prefix=x", r"no rpo="),
        ("a:prefix=x,rpo=1,rpo=2", r"rpo= given twice"),
        ("a:prefix=x,rpo=60;b:prefix=y,rpo=60;a:prefix=z,rpo=60", r"class 3 .*the name 'a' is used twice"),
        ("default:prefix=x,rpo=60", r"'default' is the name of the class of versions no class matches"),
        ("in voices:prefix=x,rpo=60", r"the name must be"),
        ("-a:prefix=x,rpo=60", r"the name must be"),
        ("a" * 33 + ":prefix=x,rpo=60", r"the name must be"),
        ("a:rpo=60", r"matches every version"),
        ("a", r"no fields"),
        ("a:prefix=x y/,rpo=60", r"prefix 'x y/' must be"),
        ("a:prefix=,rpo=60", r"prefix '' must be"),
        ("a:min=1GiB,max=1GiB,rpo=60", r"min 1GiB is not below max 1GiB"),
        ("a:max=0,rpo=60", r"max 0"),
        ("a:min=1GiBs,rpo=60", r"min '1GiBs' is not a whole number"),
        ("a:min=1gb,rpo=60", r"min '1gb' is not a whole number"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_class_at_fault(policy, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(policy)
    with pytest.raises(ValueError, match=message):  # and the configuration cannot be read with it
        Config.from_env({"TABLE_NAME": "t", "RPO_CLASSES": policy})


def test_more_classes_than_the_metric_dimension_allows_are_refused():
    policy = ";".join(f"c{i}:prefix=p{i}/,rpo=60" for i in range(MAX_CLASSES + 1))
    with pytest.raises(PolicyError, match=rf"has {MAX_CLASSES + 1} classes; at most {MAX_CLASSES}"):
        parse_policy(policy)
    assert len(parse_policy(policy.rsplit(";", 1)[0])) == MAX_CLASSES


def test_the_templates_allowed_pattern_is_the_policys_syntax():
    parameter = load_template(TEMPLATE)["Parameters"]["RpoClasses"]
    assert parameter["AllowedPattern"] == rpo.PATTERN and parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("", EXAMPLE, "a:prefix=x/,min=1KB,max=2TiB,rpo=45s;", "A_1-b:prefix=a!b_c.d*e'f(g)h-,rpo=1d"):
        assert pattern.fullmatch(good) and parse_policy(good) is not None
    # What deploys parses, and a syntax the parser refuses does not deploy.
    for bad in ("a:colour=red,rpo=1", "a:prefix=x,rpo=5x", "a:min=1gb,rpo=1", "a b:rpo=1", "a:prefix=x y,rpo=1", "a"):
        assert not pattern.fullmatch(bad)
        with pytest.raises(PolicyError):
            parse_policy(bad)


def test_the_items_class_follows_the_same_rule_as_its_deadline(ddb):
    store, pk, dest = Store(ddb, "t"), "v1#logs/x", "dst"

    def observe(due_s, rpo_class, rpo_s, **fields):
        from_source = "s_time" in fields
        return store.record_observation(
            pk,
            dest,
            now_ms=1_000,
            due_s=due_s,
            expires_s=9_999,
            fields=fields,
            due_from_source=from_source,
            rpo={"rpo_c": rpo_class, "rpo_s": rpo_s},
        )

    observe(160, "default", 60, fail="DstPutObjectNotPermitted")  # a failure report without a size, first
    assert observe(7300, "large", 7200, r_time=100_000, r_size=2**30) == (False, 160)  # kept with its deadline
    item = store.get(pk, dest)
    assert (item["due"], item["rpo_c"], item["rpo_s"]) == (160, "default", 60)
    assert observe(7250, "large", 7200, s_time=50_000, s_size=2**30) == (False, 7250)  # the source decides both
    item = store.get(pk, dest)
    assert (item["due"], item["rpo_c"], item["rpo_s"]) == (7250, "large", 7200)
