"""The benchmark harness: shaped links (:mod:`.netem`), the offload bench (:mod:`.offload`), model cost
and interleaved latency (:mod:`.profiling`), and the figures (:mod:`.plots`).

Benchmark scripts (``benchmarks/``) and the ``profile`` and ``offload-bench`` commands build on
these; nothing the device or the server runs imports them.
"""
