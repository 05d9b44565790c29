"""Committing a stage's output so that readers see whole runs, and concurrent writers lose nothing.

An output folder holds runs, a log of commits, and a marker naming the current run::

    OUTPUT/_commits/000000000007.json  {"seq": 7, "run": RUN, "stage": ..., "replaces": ..., "committed_at": ...}
    OUTPUT/_CURRENT                    a copy of the newest commit entry, for readers that read one file
    OUTPUT/_runs/RUN/_run.json         the stage and its arguments, written when the run starts
    OUTPUT/_runs/RUN/_heartbeat.json   {"at": epoch seconds, "attempt": N, "released": bool}, while it runs
    OUTPUT/_runs/RUN/_attempts/N       the claim of the N-th process to work on the run (N > 1: resumed)
    OUTPUT/_runs/RUN/<table>/...       the run's tables
    OUTPUT/_runs/RUN/_report.json      what it read, wrote and skipped, written before its commit
    OUTPUT/_runs/RUN/_superseded.json  {"at": ..., "by": ...}: when a later commit replaced it

The contract, on local disks, HDFS, S3 and GCS alike:

- **A commit is one atomic create-if-absent** of the next entry of ``_commits`` (:func:`fs.create_exclusive`:
  a hard link on local disks, a rename that refuses to overwrite on HDFS, ``If-None-Match: *`` on S3,
  a generation-0 precondition on GCS through Hadoop's connector). A run commits as entry ``n + 1``,
  where ``n`` is the newest entry when the run started (:class:`Base`); if another run committed in
  the meantime that entry exists, and the commit fails with :class:`CommitConflict`, one line that
  names the winner. So two concurrent commits give one winner, never a marker to a missing run, and
  a stage that reads its own output (predict_popularity) never overwrites a commit it did not read.
- **The current run is the newest entry of the log** (:func:`current_run`, :func:`table`).
  ``_CURRENT`` is rewritten after each commit, and rewritten again if a newer commit landed
  meanwhile, so it is the newest entry except for the moments between a commit and its copy (or
  after a committer died between the two, until the next commit): it may lag, and it never names a
  run that was deleted, because runs are kept for the retention time.
- **A run in progress is never deleted.** Its driver rewrites ``_heartbeat.json`` every
  ``heartbeat`` seconds; a run that is not current is removed by a later commit only once it has been
  superseded for ``retention`` (a run that was once current), or has had no heartbeat for
  ``retention`` (a run that never committed). A reader of a run therefore keeps it for at least
  ``retention`` after it stops being current, however many commits follow.
- **Resume joins a run only when nobody else works on it**: a run whose heartbeat is fresh
  (younger than 3 heartbeats) and not released is waited for, then left alone if it stays alive;
  the process that takes a run over creates its claim ``_attempts/N`` exclusively, so two resumers
  never share a run; a run older than half the retention is not resumed (a cleaner may be about to
  delete it).
- Names under the output start with ``_``, so Spark and Hadoop do not list them as data of
  ``OUTPUT``. Clocks: heartbeats and supersede times are the writers' clocks, compared with the
  cleaner's: keep the retention (days) far above the clock skew (seconds).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from imagerank import fs

MARKER = "_CURRENT"
COMMITS = "_commits"
RUNS = "_runs"
RUN_INFO = "_run.json"
REPORT = "_report.json"
HEARTBEAT = "_heartbeat.json"
ATTEMPTS = "_attempts"
SUPERSEDED = "_superseded.json"
SEQ_DIGITS = 12
RETENTION = 7 * 24 * 3600.0  # seconds a replaced or abandoned run is kept: a week covers a long reader
HEARTBEAT_EVERY = 30.0  # seconds between heartbeats of a run in progress
LIVE_BEATS = 3  # a run whose last heartbeat is younger than this many heartbeats may still be running


class OutputError(ValueError):
    """An output folder that is not what the caller needs (none committed, another stage's, not ours)."""


class CommitConflict(OutputError):
    """Another run committed to the output after this run started: this run is left uncommitted."""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def new_run_id() -> str:
    """Sortable by start time: ``20261129T053012Z-3f9a1c``."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_folder(output: str, run: str) -> str:
    return fs.join(output, RUNS, run)


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _read_json_or_none(uri: str):
    try:
        return fs.read_json(uri)
    except (fs.FsError, ValueError):
        return None


def _entry_name(seq: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}.json"


def _log_seqs(output: str) -> list[int]:
    names = fs.list_names(fs.join(output, COMMITS))
    return sorted(int(n[:-len(".json")]) for n in names if n.endswith(".json") and n[:-len(".json")].isdigit())


def marker(output: str) -> dict | None:
    """The newest commit of ``output`` (its log's newest entry; ``_CURRENT`` for an output committed
    before the log existed), or None where nothing was committed there."""
    seqs = _log_seqs(output)
    if seqs:
        return fs.read_json(fs.join(output, COMMITS, _entry_name(seqs[-1])))
    uri = fs.join(output, MARKER)
    if not fs.exists(uri):
        return None
    return fs.read_json(uri)


@dataclass(frozen=True)
class Base:
    """What was current when a run started: the commit it will replace (seq 0 and no run: nothing)."""

    seq: int = 0
    run: str | None = None

    @classmethod
    def of(cls, output: str) -> "Base":
        committed = marker(output)
        if committed is None:
            return cls()
        return cls(int(committed.get("seq", 0)), committed.get("run"))


def current_run(output: str, stage: str | None = None) -> str:
    """The folder of the committed run of ``output``; raises :class:`OutputError` if there is none."""
    committed = marker(output)
    if committed is None:
        what = _article(f"committed {stage} output") if stage else "a committed imagerank output"
        found = "does not exist" if not fs.exists(output) else f"has no committed run (no {MARKER} marker)"
        raise OutputError(f"{output} is not {what}: it {found}; run that stage first")
    if stage is not None and committed.get("stage") != stage:
        raise OutputError(f"{output} holds {_article(str(committed.get('stage')))} output, not "
                          f"{_article(stage)} output")
    return run_folder(output, committed["run"])


def read_report(output: str, stage: str | None = None) -> dict:
    """The report of the committed run of ``output``."""
    return fs.read_json(fs.join(current_run(output, stage), REPORT))


def table(spark, output: str, name: str, stage: str | None = None):
    """A table of the committed run of ``output``, as a DataFrame."""
    return spark.read.parquet(fs.join(current_run(output, stage), name))


def check_owned(output: str, stage: str | None = None) -> None:
    """Refuse to write where something that is not this stage's output already lies: a file, files no
    imagerank stage wrote, or the marker or a run of another stage."""
    found = fs.info(output)
    if found.type == fs.pafs.FileType.NotFound:
        return
    if found.type != fs.pafs.FileType.Directory:
        raise OutputError(f"{output} is a file, not an output folder; choose another --output")
    names = fs.list_names(output)
    if names and not {MARKER, RUNS, COMMITS} & set(names):
        raise OutputError(f"{output} already holds files that no imagerank stage wrote ({', '.join(names[:5])}); "
                          f"choose an empty or new --output")
    if stage is None:
        return
    committed = marker(output)
    if committed is not None and committed.get("stage") != stage:
        raise OutputError(f"{output} holds {_article(str(committed.get('stage')))} output (run {committed.get('run')}); "
                          f"{stage} writes only into its own output: choose another --output")
    for run in fs.list_names(fs.join(output, RUNS)):
        info = _read_json_or_none(fs.join(run_folder(output, run), RUN_INFO))
        if info is not None and info.get("stage") != stage:
            raise OutputError(f"{output} holds a run of {info.get('stage')} ({run}); {stage} writes only into its "
                              f"own output: choose another --output")


# --- heartbeats and claims -------------------------------------------------------------------------


def heartbeat(output: str, run: str) -> dict | None:
    return _read_json_or_none(fs.join(run_folder(output, run), HEARTBEAT))


def beat(output: str, run: str, attempt: int, released: bool = False) -> None:
    fs.write_json(fs.join(run_folder(output, run), HEARTBEAT),
                  {"at": time.time(), "attempt": attempt, "released": released,
                   "by": f"{socket.gethostname()}:{os.getpid()}"})


def taken_over(output: str, run: str, attempt: int) -> bool:
    """True where another process claimed the run after this attempt (it was thought dead)."""
    return fs.exists(fs.join(run_folder(output, run), ATTEMPTS, str(attempt + 1)))


def _last_sign_of_life(output: str, run: str) -> float | None:
    """Epoch seconds of the run's last heartbeat (its start where it has none yet); None if unknown."""
    beat_ = heartbeat(output, run)
    if beat_ is not None:
        return float(beat_["at"])
    info = fs.info(fs.join(run_folder(output, run), RUN_INFO))
    if info.type == fs.pafs.FileType.File and info.mtime is not None:
        return info.mtime.timestamp()
    return None


class Heartbeat:
    """Rewrites a run's heartbeat every ``every`` seconds in a daemon thread until :meth:`stop`."""

    def __init__(self, output: str, run: str, attempt: int, every: float):
        self.output, self.run, self.attempt, self.every = output, run, attempt, every
        self.lost = False  # another process claimed the run
        self._stop = threading.Event()
        beat(output, run, attempt)
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                if taken_over(self.output, self.run, self.attempt):
                    self.lost = True
                    return
                beat(self.output, self.run, self.attempt)
            except fs.FsError:
                pass  # a store hiccup: the next beat tries again; the run is stale only after 3 missed

    def stop(self) -> None:
        """Stop beating and mark the run released: a process that resumes it need not wait for it."""
        self._stop.set()
        self._thread.join(timeout=self.every + 5)
        if not self.lost and not taken_over(self.output, self.run, self.attempt):
            try:
                beat(self.output, self.run, self.attempt, released=True)
            except fs.FsError:
                pass


# --- starting, resuming and committing runs ------------------------------------------------------


def _claim(output: str, run: str, attempt: int) -> bool:
    return fs.create_exclusive(fs.join(run_folder(output, run), ATTEMPTS, str(attempt)),
                               json.dumps({"at": now_iso(), "by": f"{socket.gethostname()}:{os.getpid()}"}).encode())


def resumable_run(output: str, stage: str, args: dict, retention: float = RETENTION,
                  every: float = HEARTBEAT_EVERY) -> tuple[str, int] | None:
    """(run, attempt) of the newest uncommitted run of ``stage`` with the same arguments, claimed for
    this process; else None. A run still alive elsewhere is waited for (up to 3 heartbeats), then left."""
    committed = (marker(output) or {}).get("run")
    for run in reversed(fs.list_names(fs.join(output, RUNS))):
        if run == committed:
            return None  # nothing newer than the committed run
        folder = run_folder(output, run)
        info = _read_json_or_none(fs.join(folder, RUN_INFO))
        if fs.exists(fs.join(folder, REPORT)) or info is None:
            continue
        if info.get("stage") != stage or info.get("args") != args:
            continue
        deadline = time.time() + LIVE_BEATS * every + every
        while True:
            last = heartbeat(output, run) or {}
            age = time.time() - (_last_sign_of_life(output, run) or 0.0)
            if last.get("released") or age >= LIVE_BEATS * every or time.time() >= deadline:
                break
            time.sleep(min(every, max(0.1, deadline - time.time())))
        if not last.get("released") and age < LIVE_BEATS * every:
            continue  # still alive: its own process will finish it
        if age > retention / 2:
            continue  # so old that a cleaner may delete it under us
        attempt = int(last.get("attempt", 1)) + 1
        if _claim(output, run, attempt):
            return run, attempt
    return None


def start_run(output: str, stage: str, args: dict, resume: bool = False, retention: float = RETENTION,
              every: float = HEARTBEAT_EVERY) -> tuple[str, bool, int]:
    """(run id, resumed, attempt): a fresh run folder, or with ``resume`` an unfinished one with the
    same arguments, claimed. The caller has checked that ``output`` is ours (:func:`check_owned`)
    and starts the run's :class:`Heartbeat`."""
    if resume:
        found = resumable_run(output, stage, args, retention, every)
        if found is not None:
            return found[0], True, found[1]
    run = new_run_id()
    fs.write_json(fs.join(run_folder(output, run), RUN_INFO), {"stage": stage, "args": args, "started_at": now_iso()})
    return run, False, 1


def commit(output: str, run: str, stage: str, report: dict, base: Base | None = None,
           retention: float = RETENTION, attempt: int = 1) -> dict:
    """Write the run's report, then commit it as the entry after ``base`` (default: whatever is current
    now); then mark the run it replaced superseded and remove runs past the retention. Returns the
    commit entry. Raises :class:`CommitConflict` where another run committed after ``base``."""
    base = Base.of(output) if base is None else base
    folder = run_folder(output, run)
    if attempt > 1 or fs.exists(fs.join(folder, ATTEMPTS)):
        if taken_over(output, run, attempt):
            raise CommitConflict(f"{output}: run {run} was taken over by another process (attempt {attempt + 1}); "
                                 f"this attempt commits nothing")
    fs.write_json(fs.join(folder, REPORT), report)
    entry = {"seq": base.seq + 1, "run": run, "stage": stage, "replaces": base.run, "committed_at": now_iso()}
    data = json.dumps(entry, indent=2, sort_keys=True).encode()
    if not fs.create_exclusive(fs.join(output, COMMITS, _entry_name(entry["seq"])), data):
        winner = marker(output) or {}
        raise CommitConflict(
            f"{output}: run {winner.get('run')} was committed at {winner.get('committed_at')} while run {run} was "
            f"being written (both started from {base.run or 'an empty output'}); run {run} is left uncommitted: "
            f"run the stage again to replace {winner.get('run')}")
    _settle_marker(output, entry)
    if base.run:
        fs.write_json(fs.join(run_folder(output, base.run), SUPERSEDED), {"at": time.time(), "by": run})
    clean(output, retention, keep={run})
    return entry


def _settle_marker(output: str, entry: dict) -> None:
    """Copy the newest log entry to ``_CURRENT``; again while a newer commit landed meanwhile."""
    written = None
    while True:
        newest = marker(output) or entry
        if written is not None and newest["seq"] == written["seq"]:
            return
        fs.write_json(fs.join(output, MARKER), newest)
        written = newest


def clean(output: str, retention: float = RETENTION, keep: set[str] = frozenset()) -> list[str]:
    """Remove the runs of ``output`` past the retention: superseded for longer than ``retention``, or
    never committed and without a heartbeat for that long. The current run (of the log and of
    ``_CURRENT``), ``keep`` and anything that cannot be dated are kept. Returns the runs removed."""
    protected = set(keep) | {(marker(output) or {}).get("run")}
    copy = _read_json_or_none(fs.join(output, MARKER))
    if copy:
        protected.add(copy.get("run"))
    now, removed = time.time(), []
    for run in fs.list_names(fs.join(output, RUNS)):
        if run in protected:
            continue
        folder = run_folder(output, run)
        superseded = _read_json_or_none(fs.join(folder, SUPERSEDED))
        if superseded is not None:
            if now - float(superseded["at"]) > retention:
                fs.delete_tree(folder)
                removed.append(run)
            continue
        last = _last_sign_of_life(output, run)
        if last is None or now - last <= retention:
            continue  # running, recently active, or cannot be dated
        if fs.exists(fs.join(folder, REPORT)):
            # it finished, so it may have been current and read: kept for a retention from now
            fs.write_json(fs.join(folder, SUPERSEDED), {"at": now, "by": None})
            continue
        fs.delete_tree(folder)
        removed.append(run)
    return removed
