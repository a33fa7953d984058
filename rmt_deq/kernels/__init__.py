"""rmt_deq.kernels."""
