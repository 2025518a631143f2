"""`make bench`: run every bench/bench_*.py in its own process and print their figures.
Benchmarks print; nothing here asserts on time."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv):
    selected = set(argv)
    failures = 0
    for script in sorted(HERE.glob("bench_*.py")):
        if selected and script.stem not in selected and script.stem.removeprefix("bench_") not in selected:
            continue
        print(f"== {script.stem}", flush=True)
        failures += subprocess.run([sys.executable, str(script)], cwd=HERE).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
