"""rmt_deq.networks."""
