"""Matcher: the table's stream -> verdicts and everything published about them (crrmon.match)."""

from crrmon import runtime

lambda_handler = runtime.lambda_entry(lambda event, counters: runtime.matcher(counters).handle_batch(event["Records"]))
