#!/usr/bin/env python3
"""Writes the committed summary of bench runs: for each raw run directory given (results.jsonl,
environment.txt, as bench/run.sh leaves them in bench/results/raw/<run-id>/), bench/results/<run-id>.json
with the environment and every figure. run.sh calls it at the end of a run; by hand:

    python3 bench/summarize.py bench/results/raw/20261206-043605-full [more dirs...] [--into bench/results]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdcbench.report import write_run_summary  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dirs", nargs="+")
    ap.add_argument("--into", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    a = ap.parse_args()
    os.makedirs(a.into, exist_ok=True)
    for d in a.raw_dirs:
        print(write_run_summary(d, a.into))


if __name__ == "__main__":
    main()
