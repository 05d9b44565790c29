"""Where GraphFrames' JVM classes come from: Maven coordinates per Spark version, a local jar, a check.

GraphFrames is two parts: the Python package ``graphframes-py`` (the ``graph`` extra) and JVM
classes (``org.graphframes.*``, with GraphFrames' own copy of GraphX) that must be on Spark's
classpath. On a cluster they come from Maven Central through ``spark.jars.packages`` /
``--packages`` with the coordinates :func:`graphframes_package` returns; the group, artifact names
and Scala suffixes are those of GraphFrames' installation guide and build (artifact
``graphframes-spark{3,4}_{2.12,2.13}``, version equal to the Python package's; Spark 4 is built for
Scala 2.13 only, Spark 3.5 for 2.12 and 2.13; ``graphframes-graphx-spark*`` comes with it as a
dependency). Where Maven Central cannot be reached, a jar holding both modules is passed with
``spark.jars`` / ``--jars``: :func:`find_graphframes_jar` looks for one.
"""

from __future__ import annotations

import os
from pathlib import Path

GRAPHFRAMES_VERSION = "0.12.3"  # the graphframes-py release pinned in setup.py; the JVM release must match
JAR_ENV = "IMAGERANK_GRAPHFRAMES_JAR"
REPO_ROOT = Path(__file__).resolve().parents[3]


class GraphFramesUnavailable(RuntimeError):
    """GraphFrames' Python package or its JVM classes are missing; the message says what to pass."""


def scala_binary_version(version: str) -> str:
    """'2.13.17' -> '2.13'."""
    return ".".join(version.split(".")[:2])


def graphframes_package(spark_version: str, scala_version: str | None = None,
                        version: str = GRAPHFRAMES_VERSION) -> str:
    """Maven coordinates of GraphFrames' JVM package for this Spark (and Scala) version.

    Spark 4.x: ``io.graphframes:graphframes-spark4_2.13:<version>`` (Scala 2.13 only). Spark 3.x:
    ``io.graphframes:graphframes-spark3_2.12:<version>`` (pyspark's own Scala), or ``_2.13`` for a
    Spark built for Scala 2.13.
    """
    major = spark_version.split(".")[0]
    scala = scala_binary_version(scala_version) if scala_version else None
    if major == "4":
        if scala not in (None, "2.13"):
            raise ValueError(f"GraphFrames for Spark 4 is built for Scala 2.13 only, not {scala}")
        return f"io.graphframes:graphframes-spark4_2.13:{version}"
    if major == "3":
        if scala not in (None, "2.12", "2.13"):
            raise ValueError(f"GraphFrames for Spark 3 is built for Scala 2.12 and 2.13, not {scala}")
        return f"io.graphframes:graphframes-spark3_{scala or '2.12'}:{version}"
    raise ValueError(f"no GraphFrames {version} package for Spark {spark_version}")


def running_package(spark) -> str:
    """:func:`graphframes_package` for the running session (its Spark version and, where readable, its Scala's)."""
    scala = None
    try:
        scala = spark._jvm.scala.util.Properties.versionNumberString()
    except Exception:  # Spark Connect (no JVM here) or an odd gateway: assume the Spark version's default Scala
        pass
    return graphframes_package(spark.version, scala)


def find_graphframes_jar(repo_root: Path | None = None) -> Path | None:
    """A local GraphFrames jar: ``$IMAGERANK_GRAPHFRAMES_JAR``, else the newest ``graphframes-*.jar`` in
    ``../shared/jars`` beside the repository (or beside ``$IMAGERANK_SHARED_DATA``); None where there is none."""
    explicit = os.environ.get(JAR_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    folders = [(repo_root or REPO_ROOT).parent / "shared" / "jars"]
    if os.environ.get("IMAGERANK_SHARED_DATA"):
        folders.append(Path(os.environ["IMAGERANK_SHARED_DATA"]).expanduser().resolve().parent / "jars")
    for folder in folders:
        jars = sorted(folder.glob("graphframes-*.jar"), key=lambda p: p.stat().st_mtime)
        if jars:
            return jars[-1]
    return None


def graphframes_on_classpath(spark) -> bool:
    """Whether the session's JVM can load ``org.graphframes.GraphFramePythonAPI`` (what graphframes-py calls)."""
    from py4j.java_gateway import JavaClass

    return isinstance(spark._jvm.org.graphframes.GraphFramePythonAPI, JavaClass)


def require_graphframes(spark) -> None:
    """Raise :class:`GraphFramesUnavailable` with a one-line remedy unless GraphFrames can run here."""
    try:
        import graphframes  # noqa: F401
    except ImportError as error:
        raise GraphFramesUnavailable(
            f"the graphframes engine needs the Python package graphframes-py=={GRAPHFRAMES_VERSION} "
            f"(pip install 'imagerank[graph]'): {error}") from None
    if not hasattr(spark, "_jvm"):
        return  # Spark Connect: GraphFrames' client talks to its server plugin; nothing to check here
    if not graphframes_on_classpath(spark):
        raise GraphFramesUnavailable(
            f"the graphframes engine needs GraphFrames' JVM classes (org.graphframes.*), which are not on this "
            f"Spark's classpath: pass --packages {running_package(spark)} (spark.jars.packages) on a cluster, "
            f"or --jars <path to a graphframes jar> (spark.jars; ${JAR_ENV} for the tests)")
