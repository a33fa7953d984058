"""rmt_deq.data."""
