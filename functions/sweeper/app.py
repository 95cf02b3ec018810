"""Sweeper: due timers, TTL removals and the one-minute schedule (crrmon.sweep).

One function, three triggers: the timer queue (SQS records), the table's stream filtered to TTL
removals (DynamoDB records), and the schedule (an EventBridge "Scheduled Event").
"""

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
    sweeper = runtime.sweeper(counters)
    try:
        records = event.get("Records")
        if records is None:
            return sweeper.scheduled()
        if records and records[0].get("eventSource") == "aws:dynamodb":
            return sweeper.handle_removals(records)
        return sweeper.handle_timers(records)
    finally:
        counters.flush()
