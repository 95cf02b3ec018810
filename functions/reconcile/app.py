"""Reconcile: on ReconcileSchedule, source bucket listings against the table (crrmon.reconcile).

Versions the monitor never heard of go back into the EventsQueue as the events S3 would have sent.
"""

from crrmon import runtime


def reconcile(event, counters, context):
    remaining_s = context.get_remaining_time_in_millis() / 1000
    return runtime.reconciler(counters, context).scheduled(remaining_s)


lambda_handler = runtime.lambda_entry(reconcile, with_context=True)
