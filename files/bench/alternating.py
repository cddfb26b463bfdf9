"""Timing several ways of doing the same work, fairly on a shared machine: the ways take turns
chunk by chunk, so load from other processes hits them alike."""

import time


def time_alternating(ways, items, chunk):
    """Run every way ({name: function(list of items) -> list of results}) over items, chunk by
    chunk in turns, and print images/s, the ratio to the first way and the CPU time per item
    (all threads: less work and more cores are told apart). Returns {name: rate}, {name: results}."""
    results = {name: [] for name in ways}
    seconds = dict.fromkeys(ways, 0.0)
    cpu_seconds = dict.fromkeys(ways, 0.0)
    for start in range(0, len(items), chunk):
        for name, way in ways.items():
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] += way(items[start : start + chunk])
            seconds[name] += time.perf_counter() - t0
            cpu_seconds[name] += time.process_time() - c0
    rates = {name: len(items) / seconds[name] for name in ways}
    baseline = rates[next(iter(ways))]
    width = max(map(len, ways)) + 2
    for name, rate in rates.items():
        cpu_ms = 1000 * cpu_seconds[name] / len(items)
        print(f"{name:{width}s} {rate:7.1f} images/s  {rate / baseline:5.2f}x  {cpu_ms:5.1f} CPU ms/image")
    return rates, results
