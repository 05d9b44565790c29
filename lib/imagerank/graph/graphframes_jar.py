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
import re
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


def jar_spark_line(path: Path) -> str | None:
    """The Spark major version a GraphFrames jar was built for, from its name (``...-spark4_2.13-...``)."""
    found = re.search(r"spark(\d+)_\d+\.\d+", path.name)
    return found.group(1) if found else None


def find_graphframes_jar(repo_root: Path | None = None, spark_version: str | None = None) -> Path | None:
    """A local GraphFrames jar for this Spark line (``spark_version``, default the installed pyspark's):
    ``$IMAGERANK_GRAPHFRAMES_JAR``, else the newest ``graphframes-*spark<major>_*.jar`` in
    ``../shared/jars`` beside the repository (or beside ``$IMAGERANK_SHARED_DATA``) or a folder
    below it (``spark3/``); None where there is none. A jar built for another Spark line is never
    returned: its classes would fail at the first call."""
    explicit = os.environ.get(JAR_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    if spark_version is None:
        import pyspark

        spark_version = pyspark.__version__
    major = spark_version.split(".")[0]
    folders = [(repo_root or REPO_ROOT).parent / "shared" / "jars"]
    if os.environ.get("IMAGERANK_SHARED_DATA"):
        folders.append(Path(os.environ["IMAGERANK_SHARED_DATA"]).expanduser().resolve().parent / "jars")
    for folder in folders:
        jars = sorted((p for p in [*folder.glob("graphframes-*.jar"), *folder.glob("*/graphframes-*.jar")]
                       if jar_spark_line(p) == major), key=lambda p: p.stat().st_mtime)
        if jars:
            return jars[-1]
    return None


def session_settings(spark_version: str, settings: dict[str, str]) -> dict[str, str]:
    """What a session this package builds itself needs for GraphFrames (``graphframes-py`` installed):
    ``spark.jars`` with the local jar for this Spark line where one is found (no Maven Central here),
    else ``spark.jars.packages`` with the coordinates. Nothing where ``settings`` already name jars or
    packages: the caller's choice stays in charge."""
    try:
        import graphframes  # noqa: F401
    except ImportError:
        return {}
    if settings.get("spark.jars") or settings.get("spark.jars.packages"):
        return {}
    jar = find_graphframes_jar(spark_version=spark_version)
    if jar is not None:
        return {"spark.jars": str(jar)}
    return {"spark.jars.packages": graphframes_package(spark_version)}


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
