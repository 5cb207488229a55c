"""Run every benchmark in turn (`make bench`); each prints its own markdown table.

Each runner measures its figure next to a ceiling in the same run and is bounded in time; they
run one after another so they never compete for the machine's two cores.
"""

from __future__ import annotations

import subprocess
import sys

RUNNERS = (
    "loadtest.bench_api",
    "loadtest.bench_ratelimit",
    "loadtest.bench_consumer",
    "loadtest.bench_notifications",
    "loadtest.bench_loadtest",
    "loadtest.bench_attachments",
)


def main() -> int:
    failed = []
    for module in RUNNERS:
        print(f"\n=== {module} ===", flush=True)
        if subprocess.run([sys.executable, "-m", module], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
