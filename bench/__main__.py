"""``make bench``: run every benchmark, each against a baseline measured in the same run."""

from __future__ import annotations

import sys

from bench import intake, outbound, rate_limits, webhooks


def _intake() -> bool:
    result = intake.run()
    ok = result["ratio"] >= result["target"]
    print(f"qalita intake into the inbox vs bare Celery drain: {result['subject_per_s']:.0f}/s "
          f"vs baseline {result['baseline_per_s']:.0f}/s = {result['ratio']:.2f}x "
          f"(target >= {result['target']:.2f}x) {'ok' if ok else 'BELOW TARGET'}")
    return ok


def main() -> int:
    results = [_intake(), outbound.report(outbound.run()),
               webhooks.report(webhooks.receiving(), webhooks.draining()), rate_limits.run()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
