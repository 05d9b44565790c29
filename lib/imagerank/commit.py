"""Committing a stage's output so that a reader sees a whole run, never part of one.

An output folder holds runs, and a marker naming the one that counts::

    OUTPUT/_CURRENT                 {"run": RUN, "stage": ..., "committed_at": ...}, written last
    OUTPUT/_runs/RUN/_run.json      the stage and its arguments, written when the run starts
    OUTPUT/_runs/RUN/<table>/...    the run's tables
    OUTPUT/_runs/RUN/_report.json   what it read, wrote and skipped, written when its tables are

A run writes only into its own fresh folder; the marker is one small file replaced whole (a
rename on local disks and HDFS, one PUT on S3 and GCS), so readers that follow it
(:func:`current_run`, :func:`table`) see the previous run until the new one is complete. No folder
is renamed, which object stores cannot do atomically. A failed or killed run leaves its folder
behind, never referenced (extraction resumes from it with ``--resume``); the next commit of that
output removes every run but the new one and the one it replaced. Names under ``_runs`` start with
``_``, so Spark and Hadoop do not list them as data of ``OUTPUT``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from imagerank import fs

MARKER = "_CURRENT"
RUNS = "_runs"
RUN_INFO = "_run.json"
REPORT = "_report.json"


class OutputError(ValueError):
    """An output folder that is not what the caller needs (none committed, another stage's, not ours)."""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def new_run_id() -> str:
    """Sortable by start time: ``20261129T053012Z-3f9a1c``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_folder(output: str, run: str) -> str:
    return fs.join(output, RUNS, run)


def marker(output: str) -> dict | None:
    """The commit marker of ``output``, or None where nothing was committed there."""
    uri = fs.join(output, MARKER)
    if not fs.exists(uri):
        return None
    return fs.read_json(uri)


def current_run(output: str, stage: str | None = None) -> str:
    """The folder of the committed run of ``output``; raises :class:`OutputError` if there is none."""
    committed = marker(output)
    if committed is None:
        what = f"a committed {stage} output" if stage else "a committed imagerank output"
        raise OutputError(f"{output} is not {what} (it has no {MARKER} marker); run that stage first")
    if stage is not None and committed.get("stage") != stage:
        raise OutputError(f"{output} holds a {committed.get('stage')} output, not a {stage} output")
    return run_folder(output, committed["run"])


def read_report(output: str, stage: str | None = None) -> dict:
    """The report of the committed run of ``output``."""
    return fs.read_json(fs.join(current_run(output, stage), REPORT))


def table(spark, output: str, name: str, stage: str | None = None):
    """A table of the committed run of ``output``, as a DataFrame."""
    return spark.read.parquet(fs.join(current_run(output, stage), name))


def check_owned(output: str) -> None:
    """Refuse to write where something that is not an imagerank output already lies."""
    found = fs.info(output)
    if found.type == fs.pafs.FileType.NotFound:
        return
    if found.type != fs.pafs.FileType.Directory:
        raise OutputError(f"{output} is a file, not an output folder; choose another --output")
    names = fs.list_names(output)
    if names and MARKER not in names and RUNS not in names:
        raise OutputError(f"{output} already holds files that no imagerank stage wrote ({', '.join(names[:5])}); "
                          f"choose an empty or new --output")


def resumable_run(output: str, stage: str, args: dict) -> str | None:
    """The newest uncommitted run of ``stage`` with the same arguments, to be continued; else None."""
    committed = (marker(output) or {}).get("run")
    for run in reversed(fs.list_names(fs.join(output, RUNS))):
        if run == committed:
            return None  # nothing newer than the committed run
        folder = run_folder(output, run)
        info_uri = fs.join(folder, RUN_INFO)
        if fs.exists(fs.join(folder, REPORT)) or not fs.exists(info_uri):
            continue
        info = fs.read_json(info_uri)
        if info.get("stage") == stage and info.get("args") == args:
            return run
    return None


def start_run(output: str, stage: str, args: dict, resume: bool = False) -> tuple[str, bool]:
    """(run id, resumed): a fresh run folder, or with ``resume`` an unfinished one with the same arguments.

    The caller has checked that ``output`` is ours (:func:`check_owned`)."""
    if resume:
        run = resumable_run(output, stage, args)
        if run is not None:
            return run, True
    run = new_run_id()
    fs.write_json(fs.join(run_folder(output, run), RUN_INFO), {"stage": stage, "args": args, "started_at": now_iso()})
    return run, False


def commit(output: str, run: str, stage: str, report: dict) -> None:
    """Write the run's report, then the marker that makes it current; then drop older runs."""
    folder = run_folder(output, run)
    fs.write_json(fs.join(folder, REPORT), report)
    previous = (marker(output) or {}).get("run")
    fs.write_json(fs.join(output, MARKER), {"run": run, "stage": stage, "committed_at": now_iso()})
    for name in fs.list_names(fs.join(output, RUNS)):
        if name not in (run, previous):
            fs.delete_tree(run_folder(output, name))
