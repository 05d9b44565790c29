"""One filesystem layer for every file imagerank reads or writes itself, on the driver and in tasks.

Spark reads and writes DataFrames through Hadoop's filesystems; everything else (reports, commit
markers, the extraction's Parquet parts written from tasks, manifests, config files) goes through
pyarrow's filesystems here. Both see the same URIs:

- :func:`qualify` runs on the driver and gives a path its full meaning once, as Hadoop would
  (``fs.defaultFS`` for a path without a scheme: HDFS on a cluster, the local disk locally, where a
  relative path is made absolute against the driver's working directory). Tasks only ever receive
  qualified URIs, so a path means the same in every process.
- ``s3://`` is EMRFS on EMR; elsewhere Hadoop knows S3 only as ``s3a://``. Qualifying rewrites
  ``s3://`` to ``s3a://`` where Hadoop has no ``s3`` filesystem, so Spark can use the URI as is;
  pyarrow reads either as S3.
- S3 settings come from the Spark session's ``fs.s3a.*`` settings (endpoint, path-style access,
  keys) where set, else from the usual AWS environment (``AWS_ENDPOINT_URL`` and the default
  credential chain). :class:`FsSettings` carries them to tasks.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from pyarrow import fs as pafs

OBJECT_STORES = ("s3", "s3a", "s3n", "gs")
AWS_ENDPOINT = re.compile(r"(https?://)?s3([.-][a-z0-9-]+)?\.amazonaws\.com(\.cn)?/?")


class FsError(OSError):
    """A filesystem operation failed; the message names the path."""


@dataclass(frozen=True)
class FsSettings:
    """What a process needs to reach the same stores as the driver (picklable, shipped to tasks)."""

    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_path_style: bool = False
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_anonymous: bool = False

    @classmethod
    def from_spark(cls, spark) -> "FsSettings":
        conf = spark.sparkContext._jsc.hadoopConfiguration()

        def get(key: str) -> str | None:
            value = conf.get(key)
            return value.strip() if value else None

        providers = get("fs.s3a.aws.credentials.provider") or ""
        endpoint = get("fs.s3a.endpoint")
        if endpoint and AWS_ENDPOINT.fullmatch(endpoint):
            endpoint = None  # AWS's own (Hadoop 3.3's default): the SDK picks the region's, or AWS_ENDPOINT_URL
        elif endpoint and "://" not in endpoint:
            ssl = (get("fs.s3a.connection.ssl.enabled") or "true").lower() != "false"
            endpoint = ("https://" if ssl else "http://") + endpoint
        return cls(
            s3_endpoint=endpoint,
            s3_region=get("fs.s3a.endpoint.region"),
            s3_path_style=(get("fs.s3a.path.style.access") or "").lower() == "true",
            s3_access_key=get("fs.s3a.access.key"),
            s3_secret_key=get("fs.s3a.secret.key"),
            s3_anonymous=providers.endswith("AnonymousAWSCredentialsProvider"),
        )


_settings = FsSettings()


def configure(settings: FsSettings) -> None:
    """Use these settings in this process from now on (the driver at start, each task before its I/O)."""
    global _settings
    if settings != _settings:
        _settings = settings
        _filesystem.cache_clear()


def current_settings() -> FsSettings:
    return _settings


def scheme_of(uri: str) -> str:
    head, sep, _ = uri.partition(":")
    return head.lower() if sep and "/" not in head and len(head) > 1 else ""


def is_local(uri: str) -> bool:
    return scheme_of(uri) in ("", "file")


def local_path(uri: str) -> str:
    """The local path of a ``file:`` URI (``file:/a``, ``file:///a``, ``file://localhost/a``) or plain path."""
    if not uri.startswith("file:"):
        return uri
    rest = uri[len("file:"):]
    if rest.startswith("//"):
        rest = rest[2:]
        rest = rest[rest.index("/"):] if "/" in rest else "/"
    return rest


def qualify(spark, path: str) -> str:
    """``path`` with its full meaning, as Hadoop gives it on this driver (see the module docstring)."""
    path = path.strip()
    if not path:
        raise FsError("an empty path was given")
    scheme = scheme_of(path)
    if scheme == "s3" and not _hadoop_has_scheme(spark, "s3"):
        return "s3a" + path[2:]
    if scheme in OBJECT_STORES or scheme in ("http", "https"):
        return path
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    if scheme == "file" or (scheme == "" and _default_fs_is_local(conf)):
        return "file://" + os.path.abspath(os.path.expanduser(local_path(path)))
    jpath = spark._jvm.org.apache.hadoop.fs.Path(path)
    try:
        return str(jpath.getFileSystem(conf).makeQualified(jpath).toString())
    except Exception as err:  # noqa: BLE001 - py4j wraps Hadoop's IOException
        raise FsError(f"cannot resolve {path}: {_java_message(err)}") from None


def _default_fs_is_local(conf) -> bool:
    return (conf.get("fs.defaultFS") or "file:///").startswith("file:")


def _hadoop_has_scheme(spark, scheme: str) -> bool:
    try:
        spark._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(
            scheme, spark.sparkContext._jsc.hadoopConfiguration())
        return True
    except Exception:  # noqa: BLE001 - "No FileSystem for scheme"
        return False


def _java_message(err: Exception) -> str:
    text = str(err)
    for line in text.splitlines():
        if "Exception:" in line:
            return line.split("Exception:", 1)[1].strip()
    return text.splitlines()[0] if text else type(err).__name__


@lru_cache(maxsize=32)
def _filesystem(scheme: str, authority: str) -> pafs.FileSystem:
    s = _settings
    if scheme in ("", "file"):
        return pafs.LocalFileSystem()
    if scheme in ("s3", "s3a", "s3n"):
        endpoint = s.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        options: dict = {"region": s.s3_region or os.environ.get("AWS_REGION")
                         or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"}
        if endpoint:
            options["endpoint_override"] = endpoint  # addressed path-style by pyarrow, as S3-compatible stores want
        if s.s3_access_key and s.s3_secret_key:
            options.update(access_key=s.s3_access_key, secret_key=s.s3_secret_key)
        elif s.s3_anonymous:
            options["anonymous"] = True
        return pafs.S3FileSystem(**options)
    if scheme == "gs":
        return pafs.GcsFileSystem()
    if scheme in ("hdfs", "viewfs"):
        host, _, port = authority.partition(":")
        return pafs.HadoopFileSystem(f"{scheme}://{host}" if host else "default", int(port) if port else 0)
    raise FsError(f"no filesystem for scheme {scheme!r} (local, file:, s3:, s3a:, gs:, hdfs: are supported)")


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for a qualified URI or a local path."""
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        return _filesystem("", ""), local_path(uri)
    parts = urlsplit(uri)
    path = parts.path
    if scheme in ("s3", "s3a", "s3n", "gs"):
        return _filesystem(scheme, ""), parts.netloc + path
    return _filesystem(scheme, parts.netloc), path


def join(uri: str, *names: str) -> str:
    return posixpath.join(uri.rstrip("/"), *names) if uri.rstrip("/") else "/" + posixpath.join(*names)


def _wrap(action: str, uri: str, err: Exception) -> FsError:
    return FsError(f"cannot {action} {uri}: {err}")


def info(uri: str) -> pafs.FileInfo:
    fs, path = resolve(uri)
    try:
        return fs.get_file_info(path)
    except (OSError, ValueError) as err:
        raise _wrap("look at", uri, err) from None


def exists(uri: str) -> bool:
    return info(uri).type != pafs.FileType.NotFound


def list_names(uri: str) -> list[str]:
    """The names directly inside a folder (empty if it does not exist)."""
    fs, path = resolve(uri)
    try:
        entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except (OSError, ValueError) as err:
        raise _wrap("list", uri, err) from None
    return sorted(posixpath.basename(e.path.rstrip("/")) for e in entries)


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except (OSError, ValueError) as err:
        raise _wrap("read", uri, err) from None


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def read_json(uri: str):
    return json.loads(read_text(uri))


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole file so that readers see the old content or the new, never a part.

    Local disks and HDFS: a hidden temporary file renamed over the target. Object stores: one
    PUT, which they make visible whole.
    """
    fs, path = resolve(uri)
    try:
        parent = posixpath.dirname(path)
        _make_parent(uri, fs, parent)
        if scheme_of(uri) in OBJECT_STORES:
            with fs.open_output_stream(path) as out:
                out.write(data)
            return
        tmp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        if not is_local(uri) and fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_file(path)  # HDFS will not rename over a file
        fs.move(tmp, path)
    except (OSError, ValueError) as err:
        raise _wrap("write", uri, err) from None


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def write_json(uri: str, value) -> None:
    write_text(uri, json.dumps(value, indent=2, sort_keys=True, allow_nan=False, default=str))


def delete_tree(uri: str) -> None:
    """Remove a folder and what it holds, or a file; absent is fine."""
    fs, path = resolve(uri)
    try:
        kind = fs.get_file_info(path).type
        if kind == pafs.FileType.Directory:
            fs.delete_dir(path)
        elif kind == pafs.FileType.File:
            fs.delete_file(path)
    except (OSError, ValueError) as err:
        raise _wrap("delete", uri, err) from None


def move(src: str, dst: str) -> None:
    fs, src_path = resolve(src)
    _, dst_path = resolve(dst)
    try:
        fs.move(src_path, dst_path)
    except (OSError, ValueError) as err:
        raise FsError(f"cannot move {src} to {dst}: {err}") from None


def _make_parent(uri: str, fs: pafs.FileSystem, parent: str) -> None:
    """Folders exist on disks and HDFS; object stores have none (pyarrow would put empty marker objects)."""
    if parent and scheme_of(uri) not in OBJECT_STORES:
        fs.create_dir(parent, recursive=True)


def open_output(uri: str):
    fs, path = resolve(uri)
    try:
        _make_parent(uri, fs, posixpath.dirname(path))
        return fs.open_output_stream(path)
    except (OSError, ValueError) as err:
        raise _wrap("write", uri, err) from None


def open_input(uri: str):
    """A seekable binary file for reading."""
    fs, path = resolve(uri)
    try:
        return fs.open_input_file(path)
    except (OSError, ValueError) as err:
        raise _wrap("read", uri, err) from None
