"""Shared timing helper for the peer benchmarks: timeit-style repeats, one result line per bench.

Each timed call runs the function once (after warm-up calls that are not timed) and the line
reports the median and the best of `repeats` calls in milliseconds, e.g.
    peer=numpy bench=ns_step/256 median_ms=4.512 min_ms=4.398 runs=50
"""
import statistics
import timeit


def bench(peer, bench_id, fn, repeats, warmup=2, extra=""):
    """Time `fn()` `repeats` times (after `warmup` untimed calls) and print the result line."""
    for _ in range(warmup):
        fn()
    times = [t * 1e3 for t in timeit.repeat(fn, repeat=repeats, number=1)]
    line = (f"peer={peer} bench={bench_id} median_ms={statistics.median(times):.3f} "
            f"min_ms={min(times):.3f} runs={repeats}")
    print(line + (" " + extra if extra else ""), flush=True)
    return times
