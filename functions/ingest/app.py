"""Ingest: S3 events from the events queue -> observations and deadline timers (crrmon.ingest)."""

from aws_lambda_powertools import Logger, Metrics

from crrmon import runtime
from crrmon.metrics import Counters

logger = Logger()
metrics = Metrics()
tracer = runtime.lambda_tracer()
traced = tracer.capture_lambda_handler if tracer else (lambda handler: handler)


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@traced
def lambda_handler(event, context):
    counters = Counters()
    try:
        return runtime.ingest(counters).handle_batch(event["Records"])
    finally:
        counters.flush()
