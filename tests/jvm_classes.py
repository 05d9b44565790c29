"""A class-data archive (Java's AppCDS) of the Spark classes a short test JVM loads, built once.

Each spark-submit or plain-process job a test starts loads and verifies
the same thousands of classes from Spark's jars before it does any work. Java 13+ can dump the
classes one JVM loaded into an archive (``-XX:ArchiveClassesAtExit``) that later JVMs with the same
class path map instead (``-XX:SharedArchiveFile``). Measured on this machine, a small job under
spark-submit (local[2]): 15 busy core-seconds and 12.8 s without the archive, 8.9 and 7.0 with it;
local-cluster, 16.9 and 12.4 against 10.7 and 7.3.

:func:`archive` builds it once per Spark installation and Java, under a file lock, by running one
small job under spark-submit, and returns its path: under ``$IMAGERANK_TEST_CACHE`` where set, else
in the checkout's ignored ``build/`` folder. It returns None where the archive could not be built, or
with ``IMAGERANK_TEST_JVM_ARCHIVE=off``: the JVMs then start without it. A JVM whose class path
differs from the archive's (spark-submit's launcher, YARN's containers) ignores it; the options
silence the JVM's CDS log, which would say so on standard error. Only the tests use it: what users
run keeps Spark's defaults.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import CACHE_ENV, ROOT, spark_home

SWITCH_ENV = "IMAGERANK_TEST_JVM_ARCHIVE"
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"

JOB = """
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.getOrCreate()
out = {out!r}
(spark.range(1000).groupBy((F.col("id") % 7).alias("k")).agg(F.sum("id").alias("s"))
 .join(spark.range(7).withColumnRenamed("id", "k"), on="k", how="left").write.mode("overwrite").parquet(out))
assert spark.read.parquet(out).count() == 7
spark.stop()
"""


def _key() -> str:
    """The Spark installation (its jars' names and sizes) and the Java that run the tests."""
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    digest = hashlib.sha256(java.encode() + str(spark_home()).encode())
    for jar in sorted((spark_home() / "jars").glob("*.jar")):
        digest.update(f"{jar.name}:{jar.stat().st_size}".encode())
    return digest.hexdigest()[:16]


@functools.cache
def archive(base_options: str) -> Path | None:
    """The archive's path, built first if it is not there yet; None if it could not be built or is off."""
    if os.environ.get(SWITCH_ENV, "").lower() in ("off", "0", "no"):
        return None
    folder = Path(os.environ.get(CACHE_ENV) or ROOT / "build") / "jvm-classes"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"spark-{_key()}.jsa"
        with open(folder / f"{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist's workers, CI's lanes: one builds, the others wait
            if not path.exists():
                _build(path, base_options)
        return path if path.exists() else None
    except OSError:
        return None


def _build(path: Path, base_options: str) -> None:
    with tempfile.TemporaryDirectory(prefix="jvm-classes-") as work:
        script = Path(work) / "job.py"
        script.write_text(JOB.format(out=str(Path(work) / "out")))
        partial = path.with_suffix(".partial")
        options = f"{base_options} -XX:ArchiveClassesAtExit={partial} {QUIET}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "JDK_JAVA"))}
        env.update(SPARK_HOME=str(spark_home()), PYSPARK_PYTHON=sys.executable)
        done = subprocess.run([str(spark_home() / "bin" / "spark-submit"), "--master", "local[1]",
                               "--conf", "spark.ui.enabled=false", "--conf", f"spark.driver.extraJavaOptions={options}",
                               str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode == 0 and partial.exists():
            partial.rename(path)  # whole or not at all
        else:
            partial.unlink(missing_ok=True)
