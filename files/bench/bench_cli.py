"""Benchmark of the command lines' first answer: how long every script in files/ takes to print
its --help and to refuse an unknown flag, each run in a fresh process as a user runs it (the
median of --repeats runs). Both answers come before TensorFlow loads, so they should take well
under 1.5 s on 2 cores; a script that loads TensorFlow first takes 5 s or more.

Prints a line per script, the slowest of each, and a closing RESULT line. A wrong exit status
(not 0 for --help, not 2 for the bad flag) is marked in the script's line.

    python files/bench/bench_cli.py             # 5 runs each, about a minute on 2 cores
    python files/bench/bench_cli.py --smoke     # one run each
"""

import argparse
import glob
import os
import statistics
import subprocess
import sys
import time

FILES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {"--help": 0, "--no_such_flag": 2}  # flag: the exit status it must give


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="runs per script and flag; the median is shown (default 5)")
    p.add_argument("--smoke", action="store_true", help="one run each")
    return p.parse_args()


def timed_run(script, flag):
    """(wall-clock seconds, exit status) of `python script flag`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, script, flag], capture_output=True, check=False)
    return time.perf_counter() - start, done.returncode


def median_run(script, flag, repeats):
    """(median seconds, whether every run gave the flag's exit status)."""
    runs = [timed_run(script, flag) for _ in range(repeats)]
    return statistics.median(s for s, _ in runs), all(status == CASES[flag] for _, status in runs)


def main():
    args = parse_args()
    repeats = 1 if args.smoke else args.repeats
    scripts = sorted(glob.glob(os.path.join(FILES, "*.py")))
    print(f"{len(scripts)} scripts, median of {repeats} run(s) each; {os.cpu_count()} cores")
    times = {flag: {} for flag in CASES}
    for script in scripts:
        name = os.path.basename(script)
        parts = []
        for flag in CASES:
            times[flag][name], right_status = median_run(script, flag, repeats)
            parts.append(f"{flag} {times[flag][name]:.2f} s" + ("" if right_status else " (wrong exit status)"))
        print(f"  {name}: {', '.join(parts)}", flush=True)
    slowest = {flag: max(found, key=found.get) for flag, found in times.items()}
    print("slowest: " + ", ".join(f"{flag} {name} {times[flag][name]:.2f} s" for flag, name in slowest.items()))
    help_s, bad_flag_s = (times[flag][name] for flag, name in slowest.items())
    print(f"RESULT slowest_help_s={help_s:.3f} slowest_bad_flag_s={bad_flag_s:.3f}")


if __name__ == "__main__":
    main()
