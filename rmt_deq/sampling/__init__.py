"""rmt_deq.sampling."""
