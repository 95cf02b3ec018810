"""Replication rules read field by field with S3's defaults, and the expected destinations at their edges
(crrmon.topology): ties, order, unknown buckets, the out-of-scope reason."""

from __future__ import annotations

from crrmon.topology import Expectation, Rule, Topology

DESTINATION = {"Bucket": "arn:aws:s3:::dst"}


def test_a_v1_rule_without_a_prefix_covers_every_key_and_replicates_delete_markers():
    rule = Rule.from_s3({"ID": "v1", "Status": "Enabled", "Destination": DESTINATION})
    assert rule == Rule(id="v1", destination_bucket="dst", prefix="", delete_markers=True)


def test_a_rule_of_s3s_defaults_is_enabled_of_priority_zero_and_named_by_its_place():
    assert Rule.from_s3({"Filter": {}, "Destination": DESTINATION}) == Rule(id="rule-0", destination_bucket="dst")


def test_a_tag_filter_is_known_and_stops_delete_markers():
    raw = {
        "Filter": {"Tag": {"Key": "k", "Value": "v"}},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": DESTINATION,
    }
    rule = Rule.from_s3(raw)
    assert (rule.has_tag_filter, rule.delete_markers) == (True, False)


def topology(*rules: Rule) -> Topology:
    return Topology(sources={"src": list(rules)}, regions={"a": "eu-west-1"})


def ids(topo: Topology, key: str = "k", **kw) -> list[tuple[str, str]]:
    return [(e.destination_bucket, e.rule_id) for e in topo.expectations("src", key, **kw)]


def test_the_higher_priority_wins_in_any_order_and_the_first_on_a_tie():
    high, low = Rule("high", "a", priority=5), Rule("low", "a", priority=1)
    assert ids(topology(high, low)) == [("a", "high")]
    assert ids(topology(low, high)) == [("a", "high")]
    assert ids(topology(Rule("first", "a", priority=2), Rule("second", "a", priority=2))) == [("a", "first")]


def test_a_rule_that_does_not_apply_does_not_hide_the_next():
    rules = (Rule("off", "a", enabled=False), Rule("logs", "b", prefix="logs/"), Rule("all", "c"))
    assert ids(topology(*rules), "data/x") == [("c", "all")]


def test_a_destination_without_delete_markers_does_not_hide_the_next():
    rules = (Rule("no-dm", "a"), Rule("dm", "b", delete_markers=True))
    assert ids(topology(*rules), delete_marker=True) == [("b", "dm")]


def test_an_sse_kms_version_a_rule_leaves_out_is_expected_out_of_scope():
    expected = Expectation(
        destination_bucket="a",
        rule_id="r",
        destination_region="eu-west-1",
        out_of_scope="SSE-KMS object and the rule does not replicate SSE-KMS objects",
    )
    assert topology(Rule("r", "a")).expectations("src", "k", encryption="aws:kms:dsse") == [expected]
    assert topology(Rule("r", "a", sse_kms=True)).expectations("src", "k", encryption="aws:kms")[0].out_of_scope is None


def test_unknown_buckets_have_no_sources_and_expect_nothing():
    topo = topology(Rule("r", "a"))
    assert topo.sources_of("nobody") == ()
    assert topo.expectations("nobody", "k") == []
