#!/usr/bin/env python3
"""README.md's table of the APIs and versions Gregor serves, generated from the broker's
dispatch table by `gregor serve --api-versions` so it cannot drift.

    scripts/readme_api_table.py [--check] [GREGOR_BIN]

Without --check, rewrites the table between <!-- api-table --> and <!-- /api-table --> in
README.md. With --check, changes nothing and exits 1 (printing a diff) when README.md's copy
differs. GREGOR_BIN defaults to $GREGOR_BIN, then build/gregor.
"""
import difflib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- api-table -->\n", "<!-- /api-table -->\n"


def generated_table(gregor):
    return subprocess.run([gregor, "serve", "--api-versions"], check=True,
                          capture_output=True, text=True).stdout


def split_readme(text):
    """README text -> (before, table, after); raises ValueError without exactly one pair of
    markers in order."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError("README.md needs one %r and one %r line" % (BEGIN.strip(), END.strip()))
    head, rest = text.split(BEGIN)
    table, tail = rest.split(END)
    return head + BEGIN, table, END + tail


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    gregor = args[0] if args else os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build/gregor"))
    want = generated_table(gregor)
    with open(README) as f:
        text = f.read()
    head, have, tail = split_readme(text)
    if have == want:
        return 0
    if check:
        sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True),
                                                   "README.md", "gregor serve --api-versions"))
        return 1
    with open(README, "w") as f:
        f.write(head + want + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
