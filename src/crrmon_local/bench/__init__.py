"""`make bench`: speed, memory, AWS usage and dollars per monitored object, written to bench/results.md.

`python -m crrmon_local.bench` runs every section once and rewrites the results file. The modules:
`cost` (the price table and billing arithmetic, no I/O), `canned` (AWS answered at botocore's HTTP
layer), `usage` (an end-to-end run on moto with every request counted and billed), `speed` (CPU, I/O
overlap, cold start, memory, the sweeper at scale, the scheduled reconciliation) and `report` (the Markdown).
"""
