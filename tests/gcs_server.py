"""Google Cloud Storage on loopback for the tests: fake-gcs-server (github.com/fsouza/fake-gcs-server,
Cloud Storage's JSON API over HTTP, objects in memory) with one bucket, and Hadoop's GCS connector
(the shaded jar of com.google.cloud.bigdataoss:gcs-connector from Maven Central) that Spark and the
driver's commits reach it through, as on Dataproc. ``make gcs`` (a step of ``make test``) builds the
server with Go from its module proxy and fetches the jar, both into ``.tools/``; where either is
missing the GCS tests skip and say so."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from postgres_server import free_port

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"
# the Makefile's GCS_CONNECTOR_VERSIONS: 4.x needs Hadoop 3.4 (pyspark 4's), 3.x Hadoop 3.3.5 or later
# (Dataproc 2.2's 3.3.6), so pyspark 3.5's Hadoop 3.3.4 gets the 2.2 line
CONNECTOR_VERSIONS = {"4": "4.0.4", "3": "hadoop3-2.2.22"}
BUCKET = "imagerank"


def server_binary() -> Path | None:
    found = Path(os.environ.get("IMAGERANK_FAKE_GCS_SERVER") or TOOLS / "fake-gcs-server")
    return found if found.is_file() and os.access(found, os.X_OK) else None


def connector_jar() -> Path | None:
    """The GCS connector's shaded jar for the installed pyspark's Hadoop."""
    import pyspark

    version = CONNECTOR_VERSIONS["4" if pyspark.__version__.startswith("4") else "3"]
    found = Path(os.environ.get("IMAGERANK_GCS_CONNECTOR_JAR") or TOOLS / f"gcs-connector-{version}-shaded.jar")
    return found if found.is_file() else None


def missing() -> str | None:
    """Why the GCS tests cannot run here, or None."""
    if server_binary() is None:
        return f"no fake-gcs-server in {TOOLS} (make gcs builds it with Go)"
    if connector_jar() is None:
        return f"no GCS connector jar in {TOOLS} (make gcs fetches it from Maven Central)"
    return None


def hadoop_settings(endpoint: str) -> dict[str, str]:
    """The GCS connector's settings that reach the server, without credentials; and its classes for
    the gs scheme, as Dataproc's core-site.xml names them (a jar on spark.jars is not on the class
    path Hadoop's service loader reads)."""
    return {"fs.gs.storage.root.url": endpoint + "/", "fs.gs.project.id": "imagerank-tests",
            "fs.gs.auth.type": "UNAUTHENTICATED",  # the 3.x and 4.x connectors; the 2.2 line's two below
            "fs.gs.auth.service.account.enable": "false", "fs.gs.auth.null.enable": "true",
            # a rename as copy and delete: fake-gcs-server has no objects.move (Cloud Storage has, since 2025)
            "fs.gs.operation.move.enable": "false",
            "fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
            "fs.AbstractFileSystem.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"}


class GcsServer:
    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="imagerank-gcs-", suffix=".log", delete=False)
        self.process: subprocess.Popen | None = None

    def start(self) -> "GcsServer":
        binary = server_binary()
        if binary is None:
            raise RuntimeError(missing())
        self.process = subprocess.Popen(
            [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port), "-backend", "memory",
             "-public-host", f"127.0.0.1:{self.port}", "-external-url", self.endpoint, "-log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=2).read()
                break
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"fake-gcs-server did not start: {Path(self.log.name).read_text()[-2000:]}")
                time.sleep(0.2)
        self.create_bucket(BUCKET)
        return self

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}/storage/v1/b?project=imagerank-tests",
                                         data=json.dumps({"name": name}).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()

    def objects(self, bucket: str = BUCKET) -> list[str]:
        """The names of the bucket's objects, through the JSON API (paged)."""
        names, token = [], ""
        while True:
            query = f"?pageToken={token}" if token else ""
            with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b/{bucket}/o{query}", timeout=10) as response:
                page = json.load(response)
            names += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken")
            if not token:
                return names

    def filesystem(self):
        """pyarrow's GCS client for this server (paths ``bucket/key``)."""
        from pyarrow import fs as pafs

        return pafs.GcsFileSystem(anonymous=True, endpoint_override=f"127.0.0.1:{self.port}", scheme="http")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        os.unlink(self.log.name)
