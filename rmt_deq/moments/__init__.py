"""rmt_deq.moments."""
