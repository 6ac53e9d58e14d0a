"""Issue 11's target 4: the response time of the requests sent while a MUD's
service migrates, as bounds in ms.

A request sent during the migration may wait for the WAN and, at worst, for
the pause window: their mean should stay within 1.1 x (RTT + local) and none
should take longer than RTT + local + the pause window, local being the
service's response time before the handoff (CT-x at the MUD's own AP).

One home for the two tables that check it: tests/bench/migr/table.py (make
bench-migr) and scripts/paper-table.py (scripts/run-paper). paper-table.py,
beside it, imports it as it is; table.py puts this folder on its sys.path from
its own place in the tree, so both run from any working directory.
"""

MEAN_FACTOR = 1.1


def mean_bound(rtt_ms, local_ms):
    """The bound on the mean: 1.1 x (rtt_ms + local_ms); None without local_ms."""
    if local_ms is None:
        return None
    return MEAN_FACTOR * (rtt_ms + local_ms)


def max_bound(rtt_ms, local_ms, pause_ms):
    """The bound on the slowest: rtt_ms + local_ms + pause_ms; None without
    local_ms or pause_ms."""
    if local_ms is None or pause_ms is None:
        return None
    return rtt_ms + local_ms + pause_ms
