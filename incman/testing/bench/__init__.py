"""`make bench`: throughput and latency figures of incman on this machine."""
