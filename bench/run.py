"""`make bench`: run every bench/bench_*.py in its own process and print their figures, then the
intake figures of the template running its workflow against the same template without one (the
path users take against the plain one). Benchmarks print; nothing here asserts on time."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv):
    selected = set(argv)
    failures = 0
    ratios = []
    for script in sorted(HERE.glob("bench_*.py")):
        if selected and script.stem not in selected and script.stem.removeprefix("bench_") not in selected:
            continue
        print(f"== {script.stem}", flush=True)
        with subprocess.Popen([sys.executable, str(script)], cwd=HERE, stdout=subprocess.PIPE, text=True) as proc:
            for line in proc.stdout:
                print(line, end="", flush=True)
                if " ratio " in line:
                    ratios.append(line.strip())
        failures += proc.returncode != 0
    if ratios:
        print("== with its workflow / without", *ratios, sep="\n", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
