"""Configuration from the environment the template sets (crrmon.config)."""

import pytest

from crrmon.config import ENV_VARS, Config


def test_reads_every_variable_with_types():
    cfg = Config.from_env(
        {
            "TABLE_NAME": "t",
            "SOURCE_BUCKETS": "a, b,,c",
            "ALLOWED_ACCOUNTS": "111122223333",
            "RPO_SECONDS": "60",
            "GIVE_UP_SECONDS": "600",
            "EXPECTED_THROUGHPUT_MBPS": "12.5",
            "VERIFY_MODE": "checksum",
        }
    )
    assert cfg.source_buckets == ("a", "b", "c") and cfg.allowed_accounts == ("111122223333",)
    assert (cfg.rpo_seconds, cfg.give_up_seconds, cfg.expected_throughput_mbps) == (60, 600, 12.5)
    assert cfg.verify_mode == "checksum" and cfg.delivery_stream_name == ""
    assert len(ENV_VARS) == len(set(ENV_VARS))


def test_give_up_below_the_rpo_means_giving_up_at_the_deadline():
    cfg = Config.from_env({"TABLE_NAME": "t", "RPO_SECONDS": "3600", "GIVE_UP_SECONDS": "600"})
    assert cfg.give_up_seconds == 3600


@pytest.mark.parametrize(
    "env",
    [{}, {"TABLE_NAME": "t", "VERIFY_MODE": "md5"}, {"TABLE_NAME": "t", "RPO_SECONDS": "0"}],
)
def test_rejects_what_cannot_work(env):
    with pytest.raises(ValueError):
        Config.from_env(env)


def test_the_stack_name_reaches_the_command_digests_suggest(fake_credentials, monkeypatch):
    from crrmon import runtime
    from crrmon.digest import Monitor

    for name, value in {
        "TABLE_NAME": "t",
        "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "STACK_NAME": "crr-monitor",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    try:
        assert Config.from_env().stack_name == "crr-monitor"
        assert runtime.publisher().monitor == Monitor(stack="crr-monitor", region="eu-west-1")
    finally:
        runtime.reset()


def test_inventory_reports_name_their_place_with_the_bucket_placeholder():
    cfg = Config.from_env({"TABLE_NAME": "t", "INVENTORY_REPORTS": " s3://reports/daily/{bucket}/all "})
    assert cfg.inventory_reports == "s3://reports/daily/{bucket}/all"
    assert Config.from_env({"TABLE_NAME": "t"}).inventory_reports == ""
    for bad in ("reports/daily/{bucket}/all", "s3://reports/daily/all"):
        with pytest.raises(ValueError, match="INVENTORY_REPORTS"):
            Config(table_name="t", inventory_reports=bad)
