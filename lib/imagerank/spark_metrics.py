"""What Spark itself counted while a stage ran: its jobs' tasks, executor time, and bytes read,
written and shuffled, for the stage's report (``spark`` in every ``_report.json``).

    accounting = SparkAccounting(spark, "build_graph")   # before the stage's first Spark job
    ...                                                  # the stage's work
    accounting.totals()                                  # {"jobs": ..., "shuffle_write_bytes": ...}
    accounting.close()

The jobs are those the driver thread that entered starts after that point: they run under a job
group (a new one, or the group already set on the thread, of which only the jobs started after entry
count), restored on ``close``. The figures are summed over every attempt of each of those jobs'
stages (a retried stage's work counts twice, as it cost twice) from Spark's status store, the data
behind its web UI, which the driver keeps whether the UI runs or not: no listener to install, no
per-task read. The store keeps the last ``spark.ui.retainedJobs`` jobs and
``spark.ui.retainedStages`` stages (1,000 each by default); a stage it no longer holds is counted in
``stages_not_retained`` and its bytes are missing from the sums, so a stage with more jobs than
that (PageRank iterating for hours) reports a lower bound, and says so. Stages skipped because an
earlier job's shuffle output was reused cost nothing and add nothing.
"""

from __future__ import annotations

import uuid

from pyspark.sql import SparkSession

_GROUP, _DESCRIPTION, _INTERRUPT = "spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"
_LISTENER_WAIT_MS = 10_000  # events not yet in the store after this: counted as they stand
# (report key, StageData accessor, scale): summed over stage attempts
_FIELDS = (("tasks", "numCompleteTasks", 1), ("failed_tasks", "numFailedTasks", 1),
           ("executor_run_seconds", "executorRunTime", 1e-3), ("executor_cpu_seconds", "executorCpuTime", 1e-9),
           ("input_bytes", "inputBytes", 1), ("output_bytes", "outputBytes", 1),
           ("shuffle_write_bytes", "shuffleWriteBytes", 1), ("shuffle_write_records", "shuffleWriteRecords", 1),
           ("shuffle_read_bytes", "shuffleReadBytes", 1), ("spilled_disk_bytes", "diskBytesSpilled", 1),
           ("spilled_memory_bytes", "memoryBytesSpilled", 1),
           # where a task's time went besides its own CPU: garbage collection (other threads), writing its
           # shuffle output (disk), waiting for the shuffle blocks it reads (disk, network, other tasks)
           ("jvm_gc_seconds", "jvmGcTime", 1e-3), ("shuffle_write_seconds", "shuffleWriteTime", 1e-9),
           ("shuffle_fetch_wait_seconds", "shuffleFetchWaitTime", 1e-3))


class SparkAccounting:
    def __init__(self, spark: SparkSession, label: str):
        self.sc = spark.sparkContext
        self._saved = {key: self.sc.getLocalProperty(key) for key in (_GROUP, _DESCRIPTION, _INTERRUPT)}
        self.group = self._saved[_GROUP]
        if self.group is None:
            self.group = f"imagerank-{label}-{uuid.uuid4().hex[:12]}"
            self.sc.setJobGroup(self.group, f"imagerank {label}")
            self._set = True
        else:  # measured inside someone else's group (a test's probe, a notebook): share it
            self._set = False
        self._before = set(self.sc.statusTracker().getJobIdsForGroup(self.group))

    def close(self) -> None:
        """Restore the thread's job group as it was at entry."""
        if self._set:
            for key, value in self._saved.items():
                self.sc.setLocalProperty(key, value)
            self._set = False

    def totals(self) -> dict:
        """The sums (module docstring) over the jobs started since entry."""
        jvm_context = self.sc._jsc.sc()
        try:
            jvm_context.listenerBus().waitUntilEmpty(_LISTENER_WAIT_MS)
        except Exception:  # a TimeoutException: the store lags; report what it holds
            pass
        store = jvm_context.statusStore()
        tracker = self.sc.statusTracker()
        jobs = sorted(set(tracker.getJobIdsForGroup(self.group)) - self._before)
        stage_ids = set()
        for job in jobs:
            info = tracker.getJobInfo(job)
            if info is not None:
                stage_ids.update(info.stageIds)
        sums = {key: 0 for key, _, _ in _FIELDS}
        missing, ran = 0, 0
        for stage_id in sorted(stage_ids):
            try:
                attempts = store.stageData(stage_id, False, getattr(store, "stageData$default$3")(), False,
                                           getattr(store, "stageData$default$5")())
            except Exception:  # evicted from the store (NoSuchElementException)
                missing += 1
                continue
            for index in range(attempts.size()):
                data = attempts.apply(index)
                if str(data.status().toString()) == "SKIPPED":
                    continue
                ran += 1
                for key, accessor, scale in _FIELDS:
                    sums[key] += getattr(data, accessor)() * scale
        totals = {"jobs": len(jobs), "stage_attempts": ran, "stages_not_retained": missing}
        totals.update({key: round(value, 3) if isinstance(value, float) else int(value) for key, value in sums.items()})
        return totals
