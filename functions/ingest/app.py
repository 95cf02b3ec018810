"""Ingest: S3 events from the events queue -> observations and deadline timers (crrmon.ingest)."""

from crrmon import runtime

lambda_handler = runtime.lambda_entry(lambda event, counters: runtime.ingest(counters).handle_batch(event["Records"]))
