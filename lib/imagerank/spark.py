"""The SparkSession every job uses, configured from conf/ (and overridable by spark-submit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


def conf_dir() -> Path:
    return Path(os.environ.get("IMAGERANK_CONF_DIR", REPO_CONF))


def read_spark_defaults(path: Path) -> dict[str, str]:
    """``key value`` lines, as in Spark's spark-defaults.conf."""
    settings: dict[str, str] = {}
    if not path.exists():
        return settings
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            settings[key] = value.strip()
    return settings


def get_spark(app_name: str, master: str | None = None, extra: dict[str, str] | None = None) -> SparkSession:
    """The active session (spark-submit's), or a local one configured from conf/spark-local.conf."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Local Python workers run this interpreter (the one with imagerank installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if not os.environ.get("SPARK_SUBMIT_OPTS") and "spark.master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        builder = builder.master(master or os.environ.get("IMAGERANK_SPARK_MASTER", "local[*]"))
    settings = read_spark_defaults(conf_dir() / "spark-local.conf")
    settings.update(extra or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
