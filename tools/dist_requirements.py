"""The requirements of a built imagerank wheel, minus those a cluster brings itself (pyspark); or of
imagerank as installed in the Python that runs this (an editable install made with --no-deps).

    python tools/dist_requirements.py dist/imagerank-*.whl --extra graph --exclude pyspark
    .venv/bin/python tools/dist_requirements.py --installed imagerank --extra graph --extra test

Reads the wheel's METADATA (or the installed distribution's) Requires-Dist, keeps the unconditional requirements and those of the
named extras, drops the excluded distributions, and prints one requirement a line for
``pip install -r``. Environment markers other than ``extra == "..."`` (alone or joined by ``and``)
are kept for pip to judge.
Standard library only: it runs with any python3 (``make dist`` runs it with $(PYTHON)).
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from email.parser import Parser

EXTRA_MARKER = re.compile(r"""\s*(?:\band\s+)?extra\s*==\s*["']([^"']+)["']\s*(?:and\b\s*)?""")
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_requirements(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = Parser().parsestr(archive.read(metadata).decode("utf-8"), headersonly=True)
    return headers.get_all("Requires-Dist") or []


def installed_requirements(name: str) -> list[str]:
    from importlib.metadata import requires

    return requires(name) or []


def select(requirements: list[str], extras: set[str], exclude: set[str]) -> list[str]:
    chosen = []
    for line in requirements:
        spec, _, marker = line.partition(";")
        extra = EXTRA_MARKER.search(marker) if marker else None
        if extra and normalize(extra.group(1)) not in extras:
            continue
        name = NAME.match(spec)
        if name and normalize(name.group(1)) in exclude:
            continue
        rest = EXTRA_MARKER.sub(" ", marker).strip() if marker else ""  # the extra is chosen: drop its clause
        chosen.append(f"{spec.strip()}; {rest}" if rest else spec.strip())
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("wheel", nargs="?", help="a built wheel")
    source.add_argument("--installed", metavar="NAME", help="a distribution installed in this Python instead")
    parser.add_argument("--extra", action="append", default=[], help="an extra to include; repeatable")
    parser.add_argument("--exclude", action="append", default=[], help="a distribution to leave out; repeatable")
    args = parser.parse_args(argv)
    extras = {normalize(e) for e in args.extra}
    exclude = {normalize(e) for e in args.exclude}
    requirements = installed_requirements(args.installed) if args.installed else wheel_requirements(args.wheel)
    for line in select(requirements, extras, exclude):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
