"""rmt_deq.spectra."""
