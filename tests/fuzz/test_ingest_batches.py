"""Bad input through Ingest.handle_batch on moto: nothing crashes a batch, every rejection is logged
with a reason, counted and parked for replay, and the valid records of the same batch are recorded.

(crrmon.events.parse_body alone is fuzzed in tests/unit/test_events.py; this fuzzes the batch.)
`make fuzz` sets CRRMON_FUZZ_EXAMPLES; CRRMON_FUZZ_SECONDS bounds the wall time of each test (the
examples after it pass without running, so a long run stays time-boxed).
"""

from __future__ import annotations

import json
import logging
import os
import time
from urllib.parse import unquote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crrmon.events import REJECT_REASONS
from crrmon.store import make_pk
from crrmon_local import emulator
from tests.property.conftest import DST, SRC, build_pipeline, property_settings

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999988887777"
INGEST_REASONS = {"unknown-bucket", "account-not-allowed", "missing-destination"}
BUDGET_S = float(os.environ.get("CRRMON_FUZZ_SECONDS", "60"))
TRIED = {"batches": 0, "records": 0, "valid": 0, "rejected": 0}


def deadline_passed(started: list[float]) -> bool:
    if not started:
        started.append(time.monotonic())
    return time.monotonic() - started[0] > BUDGET_S


keys = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300).filter(
    lambda k: len(k.encode()) <= 1024
)
control_keys = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=20).map(lambda k: "ctl/" + k)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
counter = iter(range(10**12))


def valid_event(key: str, *, bucket: str = SRC, account: str = ACCOUNT, fmt: str = "eventbridge") -> tuple[str, str]:
    version_id = f"v{next(counter):016d}"
    if fmt == "eventbridge":
        body = emulator.eventbridge_object_event(
            bucket=bucket,
            key=key,
            version_id=version_id,
            size=7,
            etag="e" * 32,
            time_s=time.time(),
            region="us-east-1",
            account=account,
        )
    else:
        record = emulator.s3_notification(
            event_name="ObjectCreated:Put",
            bucket=bucket,
            key=key,
            version_id=version_id,
            time_s=time.time(),
            region="us-east-1",
            size=7,
            etag="e" * 32,
        )
        body = json.dumps({"Records": [record]})
    return body, version_id


def mutate(document, path: list, value, delete: bool):
    node = document
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


def paths(document, prefix=()):
    if isinstance(document, dict):
        for k, v in document.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))


KINDS = ("valid", "valid", "valid-notification", "control-key", "garbage-text", "garbage-json", "mutated")
KINDS += ("oversized", "key-1025", "bad-escape", "surrogate", "unwatched", "other-account", "empty")
# The emulator draws S3 sequencers from `random`; hypothesis would rather it did not.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


@st.composite
def records(draw):
    """(kind, body, version id or None): kind says what must become of the record."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "valid":
        return kind, *valid_event(draw(keys))
    if kind == "valid-notification":
        return kind, *valid_event(draw(keys), fmt="notification")
    if kind == "control-key":  # control characters are legal in S3 keys: recorded like any key
        return kind, *valid_event(draw(control_keys))
    if kind == "garbage-text":
        return kind, draw(st.text(max_size=200)), None
    if kind == "garbage-json":
        return kind, json.dumps(draw(json_values)), None
    if kind == "mutated":
        document = json.loads(valid_event(draw(keys))[0])
        path = draw(st.sampled_from(list(paths(document))))
        mutate(document, list(path), draw(json_values), draw(st.booleans()))
        return kind, json.dumps(document), None
    if kind == "oversized":
        document = json.loads(valid_event("big")[0])
        document["detail"]["padding"] = "x" * 262_145
        return kind, json.dumps(document), None
    if kind == "key-1025":
        return kind, valid_event("k" * 1025)[0], None
    if kind == "bad-escape":
        body = valid_event("a%zz-b", fmt="notification")[0].replace("a%25zz-b", "a%zz-b")
        return kind, body, None
    if kind == "surrogate":
        return kind, valid_event("lone")[0].replace('"lone"', '"lo\\ud800ne"'), None
    if kind == "unwatched":
        return kind, valid_event("x", bucket="not-watched-bucket")[0], None
    if kind == "other-account":
        return kind, valid_event("x", account=OTHER_ACCOUNT)[0], None
    return kind, "", None


MUST_REJECT = {"oversized", "key-1025", "bad-escape", "surrogate", "unwatched", "other-account", "empty"}
MUST_RECORD = {"valid", "valid-notification", "control-key"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def fuzz_pipeline(moto_account):
    session, stack, clock, stream = moto_account
    pipeline = build_pipeline(session, stack, clock, stream, allowed_accounts=(ACCOUNT,))
    parked: dict[str, str] = {}

    def park_spy(params, **_):
        if params["QueueUrl"] == stack.events_dlq_url:
            attributes = params["MessageAttributes"]
            parked[attributes["SourceMessageId"]["StringValue"]] = attributes["RejectedReason"]["StringValue"]

    pipeline.ingest.sqs.meta.events.register("provide-client-params.sqs.SendMessage", park_spy)
    yield pipeline, parked
    print(f"\nfuzzed ingest batches: {TRIED}")


STARTED: list[float] = []


@property_settings(60)
@given(batch=st.lists(records(), min_size=1, max_size=10))
def test_bad_records_never_spoil_a_batch(fuzz_pipeline, batch):
    if deadline_passed(STARTED):
        return
    pipeline, parked = fuzz_pipeline
    parked.clear()
    pipeline.clock.t = time.time()
    counters = pipeline.ingest.counters
    rejected_before = counters.total("EventsRejected")
    capture = Capture()
    logging.getLogger().addHandler(capture)
    try:
        response = pipeline.deliver([(body, 1) for _, body, _ in batch])
    finally:
        logging.getLogger().removeHandler(capture)
    first_id = pipeline.message_ids - len(batch) + 1
    ids = [f"m{first_id + i}" for i in range(len(batch))]
    TRIED["batches"] += 1
    TRIED["records"] += len(batch)

    assert response == {"batchItemFailures": []}
    for message_id, (kind, body, version_id) in zip(ids, batch, strict=True):
        if kind in MUST_RECORD:
            TRIED["valid"] += 1
            key = json.loads(body).get("detail", {}).get("object", {}).get("key")
            if key is None:  # notification: the url-encoded key
                key = unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"])
            assert pipeline.sweeper.store.get(make_pk(version_id, key), DST) is not None, kind
            assert message_id not in parked
        if kind in MUST_REJECT:
            assert message_id in parked, kind
    rejections = [r for r in capture.records if r.getMessage() == "event rejected"]
    TRIED["rejected"] += len(rejections)
    assert counters.total("EventsRejected") - rejected_before == len(rejections)
    for record in rejections:
        assert record.reason in set(REJECT_REASONS) | INGEST_REASONS
        assert record.message_id in parked and record.reason in parked[record.message_id].split(",")
    assert set(parked) == {r.message_id for r in rejections}
