#!/usr/bin/env python3
"""Which of cdcsync's functions its allocator samples come from, in a `perf record --call-graph` profile.

    perf script -i bench/results/raw/DIR/perf-cdcsync-bulk.data -F ip,sym > /tmp/stacks.txt
    python3 bench/alloc_callers.py /tmp/stacks.txt

A sample counts when one of its three innermost frames is in malloc/free (or operator new, or a page
fault); it is charged to its innermost cdcsync frame. Prints the share of all samples.
"""
import collections
import re
import sys

ALLOCATOR = ("malloc", "_int_free", "cfree", "sysmalloc", "_int_malloc", "malloc_consolidate", "unlink_chunk",
             "operator new", "page_fault")


def main():
    samples = [s for s in re.split(r"\n\s*\n", open(sys.argv[1]).read()) if s.strip()]
    callers = collections.Counter()
    hits = 0
    for sample in samples:
        frames = [line.strip().split(" ", 1)[1] if " " in line.strip() else "" for line in sample.strip().split("\n")]
        if not any(word in " ".join(frames[:3]) for word in ALLOCATOR):
            continue
        hits += 1
        callers[next((f for f in frames if f.startswith("cdcsync::") or "<cdcsync::" in f), "(no cdcsync frame)")] += 1
    print(f"{len(samples)} samples, {hits} in the allocator ({100 * hits / max(1, len(samples)):.1f} %)")
    for name, n in callers.most_common(15):
        print(f"{100 * n / len(samples):6.2f} %  {name[:150]}")


if __name__ == "__main__":
    main()
