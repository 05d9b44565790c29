"""The stage runner: what every stage does around its own logic.

    with Stage(spark, "rank", output, args={...}) as stage:
        graph = stage.input(graph_dir, "build_graph")       # the committed run of an earlier stage
        stage.write("page_rank", table)
        stage.report["levels"] = {...}
    stage.report                                            # as written to _report.json

It qualifies paths once on the driver (:mod:`imagerank.fs`), refuses inputs that are not committed
outputs of the stage expected, writes tables into a fresh run folder, and on success writes the
report inside an envelope (job, run, master, Spark version, inputs and their runs, arguments,
start, end, seconds, and what Spark counted for the run's jobs: :mod:`imagerank.spark_metrics`) and commits the run (:mod:`imagerank.commit`). On an exception nothing is
committed: the previous output, if there was one, stays current (:func:`kept_run` names it from the
exception, for the job's last line).

The run replaces the commit that was current when the stage was entered: if another run of the
same output commits first, this one fails with :class:`commit.CommitConflict` and commits nothing.
While the run is open its driver beats its heartbeat. Two Spark settings tune the protocol
(durations such as ``90s``, ``30m``, ``12h``, ``7d``):

- ``spark.imagerank.commit.retention`` (default ``7d``): how long a replaced run, or an abandoned
  one, is kept for its readers before a later commit removes it;
- ``spark.imagerank.commit.heartbeat`` (default ``30s``): how often a run in progress says it is
  alive; a run silent for three heartbeats is taken to be dead (``--resume`` may take it over).

A stage that knows its input's size sizes its shuffles to it (:meth:`Stage.size_shuffles`), so
neither Spark's default of 200 partitions nor a cluster's fixed setting makes the partitions of a
full crawl tens of gigabytes each; ``spark.imagerank.shufflePartitionBytes`` (default ``128m``)
is the size aimed at.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from pyspark.sql import DataFrame, SparkSession

from imagerank import commit, fs, iceberg
from imagerank.spark_metrics import SparkAccounting

RETENTION_SETTING = "spark.imagerank.commit.retention"
HEARTBEAT_SETTING = "spark.imagerank.commit.heartbeat"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
PARTITION_BYTES_SETTING = "spark.imagerank.shufflePartitionBytes"
PARTITION_BYTES = 128 * 2**20  # the shuffle bytes one partition aims at: 128-256 MB keeps a task's sort in memory
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class StageError(RuntimeError):
    """A run that must not publish (for example: not one input could be read)."""


KEPT = "imagerank_kept_run"  # set on the exception of a failed run: (output, run) that stays current


def kept_run(error: BaseException) -> tuple[str, str] | None:
    """(output, run) still current after ``error`` ended a stage's run, where that output held a
    committed run when the stage began; None where there was none (a fresh output), or where the
    error did not end a run (raised before the stage began, or by its commit)."""
    return getattr(error, KEPT, None)


def duration(spark: SparkSession, key: str, default: float) -> float:
    """Seconds of a duration setting (``90``, ``90s``, ``30m``, ``12h``, ``7d``); a bad one fails in one line."""
    value = spark.conf.get(key, None)
    if value is None or not value.strip():
        return default
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", value.lower())
    if not found or float(found.group(1)) <= 0:
        raise StageError(f"{key}={value!r} is not a duration; give a positive number with s, m, h or d (e.g. 7d)")
    return float(found.group(1)) * UNITS[found.group(2) or "s"]


class Stage:
    def __init__(self, spark: SparkSession, name: str, output: str, args: dict, resume: bool = False):
        self.spark = spark
        self.name = name
        fs.configure(fs.FsSettings.from_spark(spark))
        fs.use_hadoop(spark)
        self.output = fs.qualify(spark, output)
        self.args = args
        self.resume = resume
        self.inputs: dict[str, list[dict]] = {}
        self.report: dict = {}
        self.run: str | None = None
        self.resumed = False
        self.attempt = 1
        self.base = commit.Base()
        self.heartbeat: commit.Heartbeat | None = None
        self.retention = duration(spark, RETENTION_SETTING, commit.RETENTION)
        self.every = duration(spark, HEARTBEAT_SETTING, commit.HEARTBEAT_EVERY)
        self.tables: dict[str, list[str] | None] = {}  # written tables and their partition columns
        self.published: list[tuple[str, Callable[[dict], object], Callable[[], None]]] = []  # after_commit's
        self.accounting: SparkAccounting | None = None
        self.shuffle_setting: tuple[bool, str] | None = None  # (was set, value) before size_shuffles raised it

    @property
    def folder(self) -> str:
        """This run's folder (qualified URI): tables go under it. The run starts at the first use, so a
        stage that refuses its inputs first leaves nothing behind."""
        self._start_run()
        return commit.run_folder(self.output, self.run)

    def _start_run(self) -> None:
        if self.run is None:
            self.run, self.resumed, self.attempt = commit.start_run(self.output, self.name, self.args, self.resume,
                                                                    self.retention, self.every)
            self.heartbeat = commit.Heartbeat(self.output, self.run, self.attempt, self.every)

    def qualify(self, path: str) -> str:
        """``path`` qualified as Hadoop would; an input inside this stage's output is refused (the
        commit would delete it, or the stage read what it writes)."""
        qualified = fs.qualify(self.spark, path)
        self.check_input(qualified)
        return qualified

    def check_input(self, uri: str) -> None:
        """Refuses a qualified input URI inside this stage's output folder."""
        root = self.output.rstrip("/")
        if uri.rstrip("/") == root or uri.startswith(root + "/"):
            raise StageError(f"{uri}: an input inside the output folder {self.output}; write the output elsewhere")

    def input(self, path: str, stage: str, may_be_output: bool = False, tables: tuple[str, ...] = ()) -> str:
        """The committed run folder of an earlier stage's output; recorded in the report. With
        ``may_be_output``, ``path`` may be this stage's own output folder: its current run is read
        while the new one is written beside it (the commit keeps the run it replaces for the
        retention, and fails if another run committed meanwhile). A run that lacks one of
        ``tables`` raises :class:`commit.OutputError` naming it (an input problem, not a Spark failure)."""
        qualified = fs.qualify(self.spark, path)
        if not (may_be_output and qualified.rstrip("/") == self.output.rstrip("/")):
            self.check_input(qualified)
        folder = commit.current_run(qualified, stage)
        missing = [name for name in tables if not fs.exists(fs.join(folder, name))]
        if missing:
            raise commit.OutputError(f"{qualified} is a damaged {stage} output: its committed run "
                                     f"{folder.rsplit('/', 1)[1]} has no {missing[0]} table; run {stage} into it again")
        self.inputs.setdefault(stage, []).append({"path": qualified, "run": folder.rsplit("/", 1)[1]})
        return folder

    def size_shuffles(self, rows: dict[str, int], bytes_per_row: dict[str, int]) -> int:
        """Raises ``spark.sql.shuffle.partitions`` for this run so that the stage's largest exchange,
        the sum over its inputs of ``rows[name]`` x ``bytes_per_row[name]`` (the stage's own measured
        figures), comes to about ``spark.imagerank.shufflePartitionBytes`` (default 128m) a
        partition; never lowers it (a count the session sets is a floor: more partitions than
        needed cost little where adaptive execution coalesces them, and too few spill or fail).
        The setting is put back when the run ends. Returns the count; the report's
        ``shuffle_sizing`` says how it was reached."""
        conf = self.spark.conf
        raw = conf.get(PARTITION_BYTES_SETTING, None)
        try:
            target = PARTITION_BYTES if raw is None else int(
                self.spark.sparkContext._jvm.org.apache.spark.network.util.JavaUtils.byteStringAsBytes(raw.strip()))
        except Exception:  # noqa: BLE001 - py4j wraps Java's NumberFormatException
            target = 0
        if target <= 0:
            raise StageError(f"{PARTITION_BYTES_SETTING}={raw!r} is not a size; give bytes with a unit, e.g. 128m or 1g")
        configured = int(conf.get(SHUFFLE_PARTITIONS))
        needed = -(-sum(max(n, 0) * bytes_per_row[name] for name, n in rows.items()) // target)
        partitions = max(configured, needed)
        if partitions > configured:
            if self.shuffle_setting is None:
                self.shuffle_setting = (bool(self.spark._jsparkSession.conf().contains(SHUFFLE_PARTITIONS)),
                                        str(configured))
            conf.set(SHUFFLE_PARTITIONS, str(partitions))
        self.report["shuffle_sizing"] = {"rows": dict(rows), "bytes_per_row": dict(bytes_per_row),
                                         "partition_bytes": target, "configured": configured,
                                         "partitions": partitions}
        return partitions

    def _restore_shuffles(self) -> None:
        if self.shuffle_setting is not None:
            was_set, value = self.shuffle_setting
            if was_set:
                self.spark.conf.set(SHUFFLE_PARTITIONS, value)
            else:
                self.spark.conf.unset(SHUFFLE_PARTITIONS)
            self.shuffle_setting = None

    def input_report(self, folder: str) -> dict:
        return fs.read_json(fs.join(folder, commit.REPORT))

    def table(self, name: str) -> str:
        return fs.join(self.folder, name)

    def write(self, name: str, df: DataFrame, partition_by: list[str] | None = None) -> DataFrame:
        """Write a table into this run and return it as read back (later steps read the written rows)."""
        writer = df.write.mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(self.table(name))
        self.tables[name] = partition_by
        return self.spark.read.parquet(self.table(name))

    def after_commit(self, store: str, publish: Callable[[dict], object], discard: Callable[[], None]) -> None:
        """Once this run is committed, ``publish(entry)`` (make what the run prepared in another store
        current, e.g. swap a PostgreSQL table; ``entry``: the commit's, with its ``seq``); where the
        run fails or loses its commit, ``discard()``
        (remove what it prepared) instead. A ``publish`` that fails after the commit is a
        :class:`StageError` naming ``store``: the run is committed, the store keeps its previous state."""
        self.published.append((store, publish, discard))

    def _discard(self) -> None:
        for _, _, discard in self.published:
            discard()

    def __enter__(self) -> "Stage":
        self.started, self.started_at = time.time(), commit.now_iso()
        commit.check_owned(self.output, self.name)
        iceberg.destination(self.spark)  # a bad setting fails now, not after the work
        self.base = commit.Base.of(self.output)  # the commit this run replaces
        self.accounting = SparkAccounting(self.spark, self.name)  # last: __exit__ closes it
        return self

    def envelope(self) -> dict:
        sc = self.spark.sparkContext
        return {
            "job": self.name,
            "run": self.run,
            "resumed": self.resumed,
            "attempt": self.attempt,
            "replaces": self.base.run,
            "output": self.output,
            "inputs": self.inputs,
            "args": self.args,
            "master": sc.master,
            "shuffle_partitions": int(self.spark.conf.get(SHUFFLE_PARTITIONS)),
            "default_parallelism": sc.defaultParallelism,
            "spark_version": self.spark.version,
            "app_id": sc.applicationId,
            "started_at": self.started_at,
        }

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                try:
                    self._commit()
                except BaseException:
                    self._discard()
                    raise
            else:
                self._discard()
            if exc_type is not None and self.base.run is not None:
                try:
                    setattr(exc, KEPT, (self.output, self.base.run))  # read by kept_run
                except AttributeError:
                    pass  # an exception type that takes no attributes: the message just omits it
        finally:
            self._restore_shuffles()
            if self.accounting is not None:
                self.accounting.close()
            if self.heartbeat is not None:
                self.heartbeat.stop()  # a failed run's folder is left for --resume; removed after the retention

    def spark_totals(self) -> dict:
        """What Spark counted for this run's jobs (:mod:`imagerank.spark_metrics`); with the shuffle
        bytes per input row where the stage put its ``input_rows`` in the report."""
        totals = self.accounting.totals() if self.accounting is not None else {}
        rows = self.report.get("input_rows")
        if totals and isinstance(rows, int) and rows > 0:
            totals["shuffle_write_bytes_per_input_row"] = round(totals["shuffle_write_bytes"] / rows, 1)
        return totals

    def _commit(self) -> None:
        self._start_run()  # a stage that wrote no table still commits its report
        if self.heartbeat is not None and self.heartbeat.lost:
            raise commit.CommitConflict(f"{self.output}: run {self.run} was taken over by another process; "
                                        f"this attempt commits nothing")
        published = iceberg.identifiers(self.spark, self.output, [t for t in self.tables if not t.startswith("_")])
        report = {**self.envelope(), **self.report, "spark": self.spark_totals(), "finished_at": commit.now_iso(),
                  "seconds": round(time.time() - self.started, 3)}
        if published:
            report["iceberg_tables"] = {name: ident.replace("`", "") for name, ident in published.items()}
        entry = commit.commit(self.output, self.run, self.name, report, self.base, self.retention, self.attempt)
        self.report = report
        try:
            iceberg.publish(self.spark, commit.run_folder(self.output, self.run), self.run, self.tables, published)
        except Exception as error:
            raise StageError(f"{self.output}: run {self.run} is committed, but its Iceberg tables were not all "
                             f"replaced ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                             f"run the stage again to publish them") from error
        for store, publish, discard in self.published:
            try:
                publish(entry)
            except Exception as error:
                discard()
                raise StageError(f"{self.output}: run {self.run} is committed, but its {store} tables were not "
                                 f"replaced ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                                 f"the previous ones stay; run the stage again to publish them") from error
