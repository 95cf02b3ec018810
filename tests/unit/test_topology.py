"""Replication rules -> expected destinations (crrmon.topology)."""

from crrmon.topology import LIFECYCLE_EXPIRATION, Role, Topology, TopologyCache, rules_from_configuration


def rule(dest, *, id="r", priority=0, prefix=None, tags=False, status="Enabled", dm="Disabled", kms=False):
    filt = {}
    if tags and prefix is not None:
        filt = {"And": {"Prefix": prefix, "Tags": [{"Key": "replicate", "Value": "yes"}]}}
    elif tags:
        filt = {"Tag": {"Key": "replicate", "Value": "yes"}}
    elif prefix is not None:
        filt = {"Prefix": prefix}
    raw = {
        "ID": id,
        "Priority": priority,
        "Status": status,
        "Filter": filt,
        "Destination": {"Bucket": f"arn:aws:s3:::{dest}"},
        "DeleteMarkerReplication": {"Status": dm},
    }
    if kms:
        raw["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    return raw


def topology(*rules, regions=None):
    return Topology(sources={"src": rules_from_configuration({"Rules": list(rules)})}, regions=regions or {})


def dests(topo, key, **kw):
    return [(e.destination_bucket, e.rule_id) for e in topo.expectations("src", key, **kw)]


def test_several_destinations_and_prefixes():
    topo = topology(rule("a", id="all"), rule("b", id="logs", prefix="logs/"))
    assert dests(topo, "logs/x") == [("a", "all"), ("b", "logs")]
    assert dests(topo, "data/x") == [("a", "all")]


def test_highest_priority_rule_per_destination_decides():
    topo = topology(rule("a", id="low", priority=1), rule("a", id="high", priority=5, prefix="p/"))
    assert dests(topo, "p/1") == [("a", "high")]
    assert dests(topo, "q/1") == [("a", "low")]


def test_disabled_rules_expect_nothing():
    assert dests(topology(rule("a", status="Disabled")), "k") == []


def test_delete_markers_follow_the_rule_and_never_lifecycle():
    topo = topology(rule("a", id="dm", dm="Enabled"), rule("b", id="nodm"))
    assert dests(topo, "k", delete_marker=True) == [("a", "dm")]
    assert dests(topo, "k", delete_marker=True, reason=LIFECYCLE_EXPIRATION) == []


def test_tag_filtered_rules_never_replicate_delete_markers():
    topo = topology(rule("a", tags=True, dm="Enabled"))
    assert dests(topo, "k") == [("a", "r")]
    assert dests(topo, "k", delete_marker=True) == []


def test_v1_rules_use_their_prefix_and_replicate_delete_markers():
    raw = {"ID": "v1", "Prefix": "docs/", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::a"}}
    topo = topology(raw)
    assert dests(topo, "docs/x", delete_marker=True) == [("a", "v1")]
    assert dests(topo, "other") == []


def test_known_sse_kms_objects_are_out_of_scope_unless_the_rule_enables_them():
    topo = topology(rule("a", id="plain"), rule("b", id="kms", kms=True))
    out = {e.destination_bucket: e.out_of_scope for e in topo.expectations("src", "k", encryption="aws:kms")}
    assert out["a"] and out["b"] is None


def test_roles_and_regions():
    topo = Topology(
        sources={
            "east": rules_from_configuration({"Rules": [rule("west")]}),
            "west": rules_from_configuration({"Rules": [rule("east")]}),
            "solo": rules_from_configuration({"Rules": [rule("backup")]}),
        },
        regions={"backup": "eu-west-1"},
    )
    assert topo.role("east") is Role.BOTH and topo.role("solo") is Role.SOURCE
    assert topo.role("backup") is Role.DESTINATION and topo.role("nobody") is None
    assert topo.sources_of("backup") == ("solo",)
    assert topo.expectations("solo", "k")[0].destination_region == "eu-west-1"
    assert ("solo", "backup") in topo.pairs()


def test_cache_reloads_on_unknown_buckets_at_most_every_interval():
    loads = []

    def loader():
        loads.append(1)
        return Topology()

    cache = TopologyCache(loader, max_age=300, min_refresh_interval=60)
    cache.get()
    cache.get()
    assert len(loads) == 1
    cache.refresh_for_unknown()  # loaded a moment ago: not again
    assert len(loads) == 1
    cache._loaded_at -= 61
    cache.refresh_for_unknown()
    assert len(loads) == 2


# Tests below kill mutants `make mutate MODULES=topology` found alive (mutation/results.md).


def test_rules_without_an_id_are_named_by_their_place():
    raw = rule("east")
    del raw["ID"]
    rules = rules_from_configuration({"Rules": [rule("west", id="w"), raw]})
    assert [r.id for r in rules] == ["w", "rule-1"]
    assert rules_from_configuration({}) == []


class FakeTime:
    def __init__(self):
        self.now = 5000.0

    def monotonic(self):
        return self.now


def counting_cache(monkeypatch, **kwargs):
    clock = FakeTime()
    monkeypatch.setattr("crrmon.topology.time", clock)
    loads = []

    def loader():
        loads.append(clock.now)
        return Topology()

    return TopologyCache(loader, **kwargs), clock, loads


def test_a_new_cache_loads_for_an_unknown_bucket(monkeypatch):
    cache, _, loads = counting_cache(monkeypatch, max_age=300)
    cache.refresh_for_unknown()
    assert len(loads) == 1


def test_the_cache_reloads_once_older_than_its_max_age(monkeypatch):
    cache, clock, loads = counting_cache(monkeypatch, max_age=300)
    cache.get()
    clock.now += 300
    cache.get()
    assert len(loads) == 1  # exactly max_age old: still fresh
    clock.now += 0.5
    cache.get()
    assert len(loads) == 2


def test_unknown_buckets_reload_at_most_every_ten_seconds_by_default(monkeypatch):
    cache, clock, loads = counting_cache(monkeypatch, max_age=300)
    cache.get()
    clock.now += 9.5
    cache.refresh_for_unknown()
    assert len(loads) == 1
    clock.now += 0.5  # ten seconds since the load
    cache.refresh_for_unknown()
    assert len(loads) == 2
