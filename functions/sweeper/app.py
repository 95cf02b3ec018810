"""Sweeper: due timers, TTL removals and the one-minute schedule (crrmon.sweep).

One function, three triggers: the timer queue (SQS records), the table's stream filtered to TTL
removals (DynamoDB records), and the schedule (an EventBridge "Scheduled Event", no records).
"""

from crrmon import runtime


def sweep(event, counters):
    sweeper = runtime.sweeper(counters)
    records = event.get("Records")
    if records is None:
        return sweeper.scheduled()
    if records and records[0].get("eventSource") == "aws:dynamodb":
        return sweeper.handle_removals(records)
    return sweeper.handle_timers(records)


lambda_handler = runtime.lambda_entry(sweep)
