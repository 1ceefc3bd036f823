"""The benchmark harness: shaped links (:mod:`.netem`), the offload bench (:mod:`.offload`), model cost
and interleaved latency (:mod:`.profiling`), the figures (:mod:`.plots`), and the paired test that decides
whether a new model beats the shipped one (:mod:`.significance`).

Benchmark scripts (``benchmarks/``) and the ``profile`` and ``offload-bench`` commands build on
these; nothing the device or the server runs imports them.
"""
