"""One-off check of convert_to_schema1.py: every value of every result file at commit BASE
(numbers, strings such as commands, dates and machine names, booleans, nulls) is still in the
converted file, as many times, unchanged; the conversion only moved and renamed fields (values
it adds, e.g. "schema": 1, are listed). Run from the repository root:

    PYTHONPATH=. python benchmarks/results/check_schema1.py BASE
"""
import collections
import json
import os
import subprocess
import sys

from benchmarks.harness import read_result

HERE = os.path.dirname(os.path.abspath(__file__))


def leaves(x, out):
    if isinstance(x, dict):
        for v in x.values():
            leaves(v, out)
    elif isinstance(x, list):
        for v in x:
            leaves(v, out)
    else:
        out[(type(x).__name__, json.dumps(x))] += 1
    return out


def main(base):
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{base}:benchmarks/results"],
                           capture_output=True, text=True, check=True).stdout.split()
    total = 0
    for name in names:
        if not name.endswith(".json"):
            continue
        old = json.loads(subprocess.run(["git", "show", f"{base}:benchmarks/results/{name}"],
                                        capture_output=True, text=True, check=True).stdout)
        new = read_result(os.path.join(HERE, name))        # schema-checked
        a, b = leaves(old, collections.Counter()), leaves(new, collections.Counter())
        lost = a - b
        if lost:
            raise SystemExit(f"{name}: values lost or changed: {dict(lost)}")
        added = b - a
        total += sum(a.values())
        print(f"{name}: all {sum(a.values())} values kept; added "
              f"{sorted(v for _, v in added)[:12]}{' ...' if len(added) > 12 else ''}")
    print(f"OK: {total} values of {len(names)} files kept")


if __name__ == "__main__":
    main(sys.argv[1])
