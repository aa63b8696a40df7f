"""The joblib.Memory peer of benches/bigvalues.rs: one store or one hit of a float64 array, in this process.

Usage: joblib_peer.py store|load MIB LOCATION

Prints "seconds rss_before_bytes peak_bytes cpu_seconds" (peak: VmHWM after /proc/self/clear_refs reset it just before the
timed call), or "skip <reason>" when numpy or joblib is not installed.
"""

import sys
import time


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


try:
    import joblib
    import numpy as np
except ImportError as e:
    print("skip", e.name or "numpy/joblib", "not installed")
    sys.exit(0)

VALUE = None


def produce(n):
    """The cached function: returns the prepared array (a store times pickling it to disk)."""
    return VALUE


def main():
    global VALUE
    mode, mib, location = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    n = mib * (1 << 20) // 8
    memory = joblib.Memory(location=location, verbose=0)
    cached = memory.cache(produce)
    if mode == "store":
        VALUE = np.arange(n, dtype=np.float64) * 0.5 + 0.25
    before = status("VmRSS")
    reset_peak()
    cpu = time.process_time()
    start = time.perf_counter()
    out = cached(n)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = status("VmHWM")
    assert out is not None and out.shape == (n,), "the hit returned no array"
    print(elapsed, before, peak, cpu)


main()
