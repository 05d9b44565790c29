"""PySpark's Python workers re-read the directory of every zip archive on their path at each task.

A PySpark worker calls ``importlib.invalidate_caches()`` at the start of each task (after adding the
task's ``--py-files`` to its path). On Python 3.10 to 3.12 that makes each ``zipimporter`` re-read
its archive's whole directory at once (CPython gh-103200; 3.13 only marks it stale), and every
worker's path holds ``pyspark.zip``, ``py4j-*-src.zip`` and Spark's own core jar (about 10,000
entries), put there by Spark itself. Measured on this project's test machine: about 0.1 s per
task and Python pass, twice a trivial job's time.

Those archives are Spark's installation: they do not change while a worker lives. :func:`install`
makes a re-read of them a no-op, once per process (imagerank's package does it when first
imported, so a worker does it on its first task that runs imagerank code). Any other archive
(a ``--py-files`` zip, which a later task may replace) is still re-read as before.
"""

from __future__ import annotations

import os
import re
import sys
import zipimport

_SPARK_ARCHIVE = re.compile(r"(^pyspark\.zip$)|(^py4j-[\w.]+-src\.zip$)|(\.jar$)")


def spark_archive(path: str) -> bool:
    """True for the archives Spark puts on its Python workers' path: pyspark.zip, py4j's source zip
    and jars."""
    return bool(_SPARK_ARCHIVE.search(os.path.basename(path)))


def install() -> bool:
    """From now on, ``zipimporter.invalidate_caches`` leaves Spark's archives' directories as read
    (where Python re-reads them eagerly: 3.10 to 3.12). True if installed by this call."""
    if not (3, 10) <= sys.version_info[:2] <= (3, 12):
        return False
    original = zipimport.zipimporter.invalidate_caches
    if getattr(original, "_imagerank", False):
        return False

    def invalidate_caches(self):
        if not spark_archive(self.archive):
            original(self)

    invalidate_caches._imagerank = True
    zipimport.zipimporter.invalidate_caches = invalidate_caches
    return True
