"""Progress on the console while a stage runs: a line every few seconds, on standard error.

    [extract] crawl files 3/10, 1,234 pages, 456 pages/s

The counts come from Spark accumulators that tasks add to as each crawl file finishes, so they move
file by file; the line is printed by a daemon thread on the driver.
"""

from __future__ import annotations

import sys
import threading
import time


def say(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


class FileProgress:
    """Files done of a total, and pages, for a stage that runs one task per input file."""

    def __init__(self, spark, stage: str, total: int, done: int = 0, every: float = 2.0):
        sc = spark.sparkContext
        self.stage = stage
        self.total = total
        self.done_before = done
        self.files = sc.accumulator(0)
        self.pages = sc.accumulator(0)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"imagerank-progress-{stage}", daemon=True)
        self.started = time.time()

    def line(self) -> str:
        elapsed = max(time.time() - self.started, 1e-9)
        pages = self.pages.value
        return (f"crawl files {self.done_before + self.files.value}/{self.total}, "
                f"{pages:,} pages, {pages / elapsed:,.0f} pages/s")

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            say(self.stage, self.line())

    def __enter__(self) -> "FileProgress":
        say(self.stage, f"{self.total} crawl files, {self.done_before} already done")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        say(self.stage, self.line())
