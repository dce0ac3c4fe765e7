"""``make bench``: run every benchmark, print its ratio against its in-run baseline."""

from __future__ import annotations

import sys

from bench import intake

BENCHMARKS = {"qalita intake into the inbox vs bare Celery drain": intake.run}


def main() -> int:
    failed = False
    for title, run in BENCHMARKS.items():
        result = run()
        verdict = "ok" if result["ratio"] >= result["target"] else "BELOW TARGET"
        failed |= verdict != "ok"
        print(f"{title}: {result['subject_per_s']:.0f}/s vs baseline "
              f"{result['baseline_per_s']:.0f}/s = {result['ratio']:.2f}x "
              f"(target >= {result['target']:.2f}x) {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
