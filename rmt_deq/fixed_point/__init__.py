"""rmt_deq.fixed_point."""
