"""README.md's table of served APIs is the one `gregor serve --api-versions` prints from the
dispatch table (scripts/readme_api_table.py regenerates it), and that table is what a running
broker advertises in ApiVersions.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GREGOR_BIN, REPO_ROOT, Broker, KafkaRaw, check, run_tests,  # noqa: E402
                     test)

SCRIPT = os.path.join(REPO_ROOT, "scripts", "readme_api_table.py")


def table_rows(text):
    """Markdown table rows (after the two header lines) -> {key: (name, lo, hi)}."""
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        lo, hi = cells[2].split("-")
        rows[int(cells[0])] = (cells[1], int(lo), int(hi))
    return rows


@test
def test_readme_api_table_matches_dispatch_table():
    """scripts/readme_api_table.py --check: README.md's copy between the api-table markers is
    exactly what `gregor serve --api-versions` prints (run the script without --check to
    update README.md)."""
    p = subprocess.run([sys.executable, SCRIPT, "--check", GREGOR_BIN], capture_output=True,
                       text=True)
    check(p.returncode == 0, "README.md's API table is stale (run scripts/readme_api_table.py):"
          "\n%s%s" % (p.stdout, p.stderr))


@test
def test_api_versions_dump_is_what_the_broker_advertises():
    """Every row of `gregor serve --api-versions` is an API key and range the broker answers
    ApiVersions v3 with, and every advertised API has a row."""
    out = subprocess.run([GREGOR_BIN, "serve", "--api-versions"], check=True,
                         capture_output=True, text=True).stdout
    rows = table_rows(out)
    with Broker() as b, KafkaRaw(b) as k:
        av = k.api_versions(3)
    check(av["error_code"] == 0, "ApiVersions error %d" % av["error_code"])
    got = {key: (lo, hi) for key, (_, lo, hi) in rows.items()}
    check(got == av["api_keys"], "dump %r != advertised %r" % (got, av["api_keys"]))


if __name__ == "__main__":
    run_tests()
