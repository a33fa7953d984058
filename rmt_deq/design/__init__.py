"""rmt_deq.design."""
