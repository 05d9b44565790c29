"""Run a command holding an exclusive lock on a file, as util-linux's flock(1) does:

    python tools/locked.py LOCKFILE COMMAND [ARG ...]

Every build of this checkout (the editable installs of make install and make test-spark35's .venv35,
make dist's wheel) writes lib/imagerank.egg-info and build/; .ci/run makes both environments at once
and packs both Spark lines' dists, so each build runs under one lock (lib/.egg-info.lock). Exits with
the command's status.
Standard library only (fcntl: any POSIX system, macOS included, where flock(1) may be missing).
"""

from __future__ import annotations

import fcntl
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(argv[0], "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return subprocess.call(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
