"""rmt_deq.jobs."""
