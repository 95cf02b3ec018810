"""The sample events in events/ (for `sam local invoke`) are what each function's domain code expects."""

import json
from pathlib import Path

from crrmon.config import Config
from crrmon.match import Matcher
from crrmon.metrics import Counters
from crrmon.model import Status
from crrmon.publish import Publisher
from crrmon.sweep import Sweeper, is_ttl_removal
from crrmon.timers import Timer

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(name):
    return json.loads((EVENTS / name).read_text())


class RecordingStore:
    def __init__(self):
        self.verdicts = []

    def write_verdict(self, pk, dest, verdict, **kwargs):
        self.verdicts.append((pk, dest, verdict))
        return True


class RecordingPublisher(Publisher):
    def __init__(self):
        super().__init__()
        self.published = []

    def publish(self, changes, counters, *, now_ms):
        self.published.extend(changes)


def test_matcher_sample_insert_then_modify_completes_by_etag():
    store, publisher = RecordingStore(), RecordingPublisher()
    matcher = Matcher(Config(table_name="t"), store, publisher, None, Counters(), lambda: 1763647412.0)
    assert matcher.handle_batch(sample("matcher-stream-batch.json")["Records"]) == {"batchItemFailures": []}
    [(pk, dest, verdict)] = store.verdicts  # the INSERT holds the source only; the MODIFY adds the replica
    assert dest == "crr-demo-dest-usw2" and pk.endswith("#invoices/2025/11/INV-000123.pdf")
    assert verdict.status is Status.COMPLETED and verdict.verified_by == "etag" and verdict.latency_ms == 4000


def test_sweeper_ttl_sample_is_published_as_expired():
    [record] = sample("sweeper-ttl-removal.json")["Records"]
    assert is_ttl_removal(record)
    publisher = RecordingPublisher()
    sweeper = Sweeper(Config(table_name="t"), None, None, None, publisher, None, Counters(), lambda: 1.0)
    assert sweeper.handle_removals([record]) == {"batchItemFailures": []}
    [change] = publisher.published
    assert change.status is Status.EXPIRED and change.old_status == "OVERDUE"


def test_sweeper_timer_sample_is_a_timer_and_the_schedule_sample_has_no_records():
    [record] = sample("sweeper-timer.json")["Records"]
    timer = Timer.parse(record["body"])
    assert timer.pk.startswith("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY#") and timer.due_s == 1763648309
    assert "Records" not in sample("sweeper-schedule.json")
