"""The SparkSession every job uses.

Under ``spark-submit`` (and on a cluster: YARN, EMR steps, Dataproc jobs) the session is the one
spark-submit configured: its master and every setting it was given are left as they are, and the few
in ``SUBMIT_DEFAULTS`` are added where it was not given them. Only a
plain ``python jobs/x.py`` run, with no Spark launcher behind it, builds a local session, configured
from the package's ``spark-local.conf`` (``imagerank/conf/``), with GraphFrames' JVM package (the
local jar for this Spark line where one is found, else its Maven coordinates) unless ``spark.jars``
or ``spark.jars.packages`` are given, and with the package's ``log4j2.properties`` (Spark's log:
warnings and errors, on standard error, so that standard output holds the job's summary alone)
unless the driver's Java options name a log4j configuration.

Also :func:`kept_checkpoint_dir`, for the one piece of the running context's state that stages move
for a while (its checkpoint folder).
"""

from __future__ import annotations

import contextlib
import os
import sys
from importlib import resources

import pyspark
from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from imagerank.graph.graphframes_jar import session_settings

# Settings whose absence would change results, applied to a spark-submit session only where the
# submitter did not set them (they are runtime SQL settings, so setting them is always allowed).
REQUIRED_SQL = {"spark.sql.session.timeZone": "UTC"}

# Settings a spark-submit driver starts with where the submitter did not set them.
SUBMIT_DEFAULTS = {
    # A client-mode driver whose YARN application ends KILLED or FAILED (`yarn application -kill`, a
    # scheduler's timeout) exits with code 1. Without it, Spark stops the context and a job submitted in
    # that moment waits forever (seen on Spark 3.5 in tests/test_yarn.py): the step never ends.
    "spark.yarn.am.clientModeExitOnError": "true",
}


def package_conf(name: str) -> str:
    """The text of a configuration file shipped in the package (``imagerank/conf/NAME``)."""
    return resources.files("imagerank.conf").joinpath(name).read_text(encoding="utf-8")


def parse_spark_defaults(text: str) -> dict[str, str]:
    """``key value`` lines, as in Spark's spark-defaults.conf."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            settings[key] = value.strip()
    return settings


LOG_CONF = "log4j2.properties"
JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def with_log_conf(java_options: str) -> str:
    """The driver's Java options with the package's log4j2 configuration, unless they name one."""
    if "log4j2.configurationFile" in java_options or "log4j.configuration" in java_options:
        return java_options
    path = str(resources.files("imagerank.conf").joinpath(LOG_CONF))  # a file: local sessions run installed code
    option = f'-Dlog4j2.configurationFile="{path}"' if " " in path else f"-Dlog4j2.configurationFile={path}"
    return f"{java_options} {option}".strip()


def launched_by_spark() -> bool:
    """True when a Spark launcher (spark-submit, a notebook kernel, a cluster step) started this driver."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "spark.master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "")


def get_spark(app_name: str, master: str | None = None, extra: dict[str, str] | None = None,
              packages: tuple[str, ...] = ()) -> SparkSession:
    """The active session; else spark-submit's (untouched); else a local one from spark-local.conf.

    ``master``, ``extra`` and ``packages`` (Maven coordinates added to ``spark.jars.packages``, e.g.
    the PostgreSQL JDBC driver for a job given a database) apply to a local session only (tests,
    ``python jobs/x.py``): under spark-submit they are ``--packages``' business.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if launched_by_spark():
        SparkContext._ensure_initialized()  # the launcher's JVM, whose settings SparkConf() then reads
        given = SparkConf()
        builder = SparkSession.builder  # the name, master and settings spark-submit gave
        for key, value in SUBMIT_DEFAULTS.items():
            if not given.contains(key):
                builder = builder.config(key, value)
        session = builder.getOrCreate()
        conf = session.sparkContext.getConf()
        for key, value in REQUIRED_SQL.items():
            if not conf.contains(key):
                session.conf.set(key, value)
        return session
    # Local Python workers run this interpreter (the one with imagerank installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(
        master or os.environ.get("IMAGERANK_SPARK_MASTER", "local[*]"))
    settings = parse_spark_defaults(package_conf("spark-local.conf"))
    settings.update(extra or {})
    settings[JAVA_OPTIONS] = with_log_conf(settings.get(JAVA_OPTIONS, ""))
    settings.update(session_settings(pyspark.__version__, settings))  # GraphFrames' JVM package, as graph stages need
    if packages:
        listed = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
        settings["spark.jars.packages"] = ",".join(dict.fromkeys([*listed, *packages]))
    for key, value in settings.items():
        builder = builder.config(key, value)
    return _with_jvm_stdout_on_stderr(builder.getOrCreate)


def _with_jvm_stdout_on_stderr(start):
    """Start the local JVM with standard error as its standard output: what it prints there (Ivy's
    ``:: loading settings ::`` line when resolving packages on Spark 3.5, a library's println)
    never mixes into the job's summary on this process's standard output."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no real file descriptor 1 (an embedding host)
        return start()
    try:
        os.dup2(2, 1)
        return start()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def kept_checkpoint_dir(spark: SparkSession):
    """Within the block, SparkContext's checkpoint folder may be pointed elsewhere (GraphFrames'
    connected components, the rank stage's checkpoints, GraphX's Pregel); after it, it is set back
    to what it was, not left pointing into a folder the block's owner deletes, where a later job of
    the session would write its checkpoints again. Best effort: the setter is Spark-internal; where
    it fails, the folder is left as it is."""
    context = spark.sparkContext._jsc.sc()
    before = context.checkpointDir()  # a scala.Option[String]
    try:
        yield
    finally:
        try:
            getattr(context, "checkpointDir_$eq")(before)
        except Exception:  # noqa: BLE001 - a py4j error from Spark's internal setter
            pass
