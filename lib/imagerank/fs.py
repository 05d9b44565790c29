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

Which client serves which scheme, in every process (driver and tasks):

- local paths and ``file:``: the local disk;
- ``s3:`` (EMRFS's name), ``s3a:``, ``s3n:``: pyarrow's S3 client (boto3 for conditional writes);
- ``gs:``: pyarrow's GCS client (Hadoop's GCS connector on the driver for :func:`create_exclusive`);
- ``hdfs:``, ``viewfs:``: pyarrow's libhdfs client where a Hadoop installation brings libhdfs
  (EMR, Dataproc: ``ARROW_LIBHDFS_DIR`` or ``$HADOOP_HOME/lib/native``), else WebHDFS, the
  NameNode's REST API (:mod:`imagerank.webhdfs`, pure Python, at ``dfs.namenode.http-address``);
  ``spark.imagerank.hdfs.client`` (auto, libhdfs, webhdfs) forces one;
- any other scheme Hadoop knows (``abfs:``, ...): on the driver only, through the session's Hadoop
  filesystem, for :func:`create_exclusive`; elsewhere an error naming the scheme.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from pyarrow import fs as pafs

OBJECT_STORES = ("s3", "s3a", "s3n", "gs")
HADOOP_STORES = ("hdfs", "viewfs")
HDFS_CLIENT_SETTING = "spark.imagerank.hdfs.client"
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
    hdfs_client: str = "auto"  # auto | libhdfs | webhdfs (spark.imagerank.hdfs.client)
    hdfs_http: tuple[tuple[str, str], ...] = ()  # (authority, NameNode HTTP host:port) for WebHDFS
    hdfs_user: str | None = None  # the user WebHDFS acts as (the Spark user)
    gcs_endpoint: str | None = None  # fs.gs.storage.root.url where it is not Google's (an emulator's)
    gcs_anonymous: bool = False  # fs.gs.auth.type UNAUTHENTICATED (fs.gs.auth.null.enable on the 2.2 connectors)

    @classmethod
    def from_spark(cls, spark) -> "FsSettings":
        try:  # hdfs-site.xml (the NameNode's HTTP address) is read only once HDFS's classes have loaded
            spark._jvm.org.apache.hadoop.conf.Configuration.addDefaultResource("hdfs-site.xml")
        except Exception:  # noqa: BLE001 - no JVM (Spark Connect): nothing to add
            pass
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
            hdfs_client=(spark.conf.get(HDFS_CLIENT_SETTING, None) or "auto").strip().lower(),
            hdfs_http=_namenode_http_addresses(get),
            hdfs_user=spark.sparkContext.sparkUser(),
            gcs_endpoint=_gcs_endpoint(get("fs.gs.storage.root.url")),
            gcs_anonymous=((get("fs.gs.auth.type") or "").upper() == "UNAUTHENTICATED"
                           or (get("fs.gs.auth.null.enable") or "").lower() == "true"),  # the 2.2 connectors
        )


def _gcs_endpoint(root_url: str | None) -> str | None:
    """The GCS connector's root URL as pyarrow's endpoint; None for Google's own."""
    if not root_url or urlsplit(root_url).hostname in (None, "storage.googleapis.com"):
        return None
    return root_url.rstrip("/")


def _namenode_http_addresses(get) -> tuple[tuple[str, str], ...]:
    """(authority, host:port) of each NameNode's HTTP server the Hadoop configuration names: the
    default file system's, and each nameservice's first NameNode (HA)."""
    found: list[tuple[str, str]] = []
    default = urlsplit(get("fs.defaultFS") or "")
    single = get("dfs.namenode.http-address")
    if default.scheme == "hdfs" and default.netloc:
        host = default.hostname or ""
        port = single.rsplit(":", 1)[1] if single and ":" in single else "9870"
        found.append((default.netloc, f"{host}:{port}"))
    for service in (get("dfs.nameservices") or "").split(","):
        service = service.strip()
        namenodes = [n.strip() for n in (get(f"dfs.ha.namenodes.{service}") or "").split(",") if n.strip()]
        for namenode in namenodes[:1]:
            address = get(f"dfs.namenode.http-address.{service}.{namenode}")
            if address:
                found.append((service, address))
    return tuple(found)


_settings = FsSettings()
_hadoop = None  # (the JVM, Hadoop's Configuration) of this driver's session: see use_hadoop


def use_hadoop(spark) -> None:
    """Let this driver reach the cluster's Hadoop filesystems (for :func:`create_exclusive` on
    ``hdfs:``, ``gs:`` and other Hadoop schemes); tasks never need it."""
    global _hadoop
    _hadoop = (spark._jvm, spark.sparkContext._jsc.hadoopConfiguration(), spark.sparkContext._gateway)


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
    if scheme in OBJECT_STORES or scheme in ("http", "https", "jdbc"):  # jdbc: a database (imagerank.postgres)
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
        options = {"anonymous": True} if s.gcs_anonymous else {}
        if s.gcs_endpoint:
            parts = urlsplit(s.gcs_endpoint)
            options.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
        return pafs.GcsFileSystem(**options)
    if scheme in HADOOP_STORES:
        return _hdfs(scheme, authority)
    raise FsError(f"no filesystem for scheme {scheme!r} (local, file:, s3:, s3a:, gs:, hdfs: are supported)")


def libhdfs_found() -> bool:
    """Whether pyarrow's HDFS client can load libhdfs here: ``ARROW_LIBHDFS_DIR`` or the Hadoop
    installation's native folder (EMR, Dataproc) holds it. pip installs never bring it."""
    folders = [os.environ.get("ARROW_LIBHDFS_DIR")]
    if os.environ.get("HADOOP_HOME"):
        folders.append(os.path.join(os.environ["HADOOP_HOME"], "lib", "native"))
    return any(folder and os.path.isfile(os.path.join(folder, "libhdfs.so")) for folder in folders)


def _hdfs(scheme: str, authority: str) -> pafs.FileSystem:
    """HDFS through libhdfs (pyarrow's client; where a Hadoop installation brings it) or WebHDFS (the
    NameNode's REST API over HTTP, in pure Python: where it does not)."""
    s = _settings
    client = s.hdfs_client
    if client not in ("auto", "libhdfs", "webhdfs"):
        raise FsError(f"{HDFS_CLIENT_SETTING}={client!r}: choose auto, libhdfs or webhdfs")
    if client == "libhdfs" or (client == "auto" and libhdfs_found()):
        host, _, port = authority.partition(":")
        return pafs.HadoopFileSystem(f"{scheme}://{host}" if host else "default", int(port) if port else 0)
    address = dict(s.hdfs_http).get(authority)
    if address is None:
        host = authority.rpartition(":")[0] or authority
        address = f"{host}:9870" if host else None
    if address is None:
        raise FsError(f"{scheme}://{authority}: no libhdfs here and no NameNode HTTP address for WebHDFS; set "
                      f"ARROW_LIBHDFS_DIR (and CLASSPATH=$(hadoop classpath --glob)) or dfs.namenode.http-address")
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    from imagerank.webhdfs import WebHdfs

    host, _, port = address.rpartition(":")
    return PyFileSystem(FSSpecHandler(WebHdfs(host, int(port), user=s.hdfs_user or os.environ.get("HADOOP_USER_NAME"))))


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
    """A whole file. On S3 one GET of the whole object, on WebHDFS one OPEN (never a size, then a
    ranged read, which a file replaced in between would cut short), so a file replaced while it is
    read (the marker) is read whole, old or new."""
    if scheme_of(uri) in ("s3", "s3a", "s3n"):
        return _read_s3(uri)
    fs, path = resolve(uri)
    try:
        client = _webhdfs(fs)
        if client is not None:
            return client.read_whole(path)
        with fs.open_input_stream(path) as stream:  # to the end of what was opened, never to a size looked up by name
            return b"".join(iter(lambda: stream.read(1 << 20), b""))
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
        if is_local(uri):
            fs.move(tmp, path)  # rename(2) replaces the target atomically
        else:
            _hadoop_rename(uri, fs, tmp, path, overwrite=True)
    except (OSError, ValueError) as err:
        raise _wrap("write", uri, err) from None


def _webhdfs(fs: pafs.FileSystem):
    """The WebHDFS client behind a pyarrow filesystem, or None."""
    from imagerank.webhdfs import WebHdfs

    handler = getattr(fs, "handler", None)
    client = getattr(handler, "fs", None)
    return client if isinstance(client, WebHdfs) else None


def _hadoop_rename(uri: str, fs: pafs.FileSystem, source: str, target: str, overwrite: bool) -> bool:
    """Rename on HDFS in one atomic step at the NameNode: over an existing target with ``overwrite``
    (WebHDFS's ``renameoptions=OVERWRITE``, or Hadoop's ``FileContext.rename(OVERWRITE)`` on the
    driver), else False where the target exists. Only a task on libhdfs, which has neither, replaces
    a file by deleting it first (the name is missing for an instant)."""
    client = _webhdfs(fs)
    if client is not None:
        return client.rename(source, target, overwrite)
    if _hadoop is not None:
        jvm, conf, gateway = _hadoop
        parts = urlsplit(uri)
        root = f"{parts.scheme}://{parts.netloc}"
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(jvm.java.net.URI(root), conf)
        rename = jvm.org.apache.hadoop.fs.Options.Rename
        options = gateway.new_array(rename, 1)
        options[0] = rename.OVERWRITE if overwrite else rename.NONE
        path = jvm.org.apache.hadoop.fs.Path
        try:
            context.rename(path(root + source), path(root + target), options)
            return True
        except Exception as err:  # noqa: BLE001 - py4j wraps FileAlreadyExistsException
            if not overwrite and "FileAlreadyExists" in str(err):
                return False
            raise OSError(_java_message(err)) from None
    if fs.get_file_info(target).type != pafs.FileType.NotFound:
        if not overwrite:
            return False
        fs.delete_file(target)
    fs.move(source, target)
    return True


def create_exclusive(uri: str, data: bytes) -> bool:
    """Create a whole file only where nothing is yet, in one atomic step: True if this call created
    it, False if it was there already (whoever wrote it). Two callers racing for one name get one
    True. Readers see the whole content or no file.

    - local disks: the content goes to a hidden temporary file, hard-linked to the name (``link``
      fails where the name exists);
    - S3: one PUT with ``If-None-Match: *`` (S3's conditional write; MinIO and moto have it too);
    - HDFS: a finished temporary file renamed without overwrite (the NameNode refuses a rename to
      an existing name, atomically), through WebHDFS or, on the driver, Hadoop's ``FileContext``;
    - GCS (through Hadoop's GCS connector, which sends a generation-0 precondition), ABFS and
      other Hadoop schemes: on the driver, through the session's Hadoop filesystem
      (:func:`use_hadoop`): ``create(overwrite=false)`` on GCS; a temporary file renamed without
      overwrite elsewhere.
    """
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        return _create_exclusive_local(local_path(uri), data)
    if scheme in ("s3", "s3a", "s3n"):
        return _create_exclusive_s3(uri, data)
    if scheme in HADOOP_STORES:
        return _create_exclusive_hdfs(uri, data)
    return _create_exclusive_hadoop(uri, data)


def _create_exclusive_hdfs(uri: str, data: bytes) -> bool:
    fs, path = resolve(uri)
    parent = posixpath.dirname(path)
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        fs.create_dir(parent, recursive=True)
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        try:
            return _hadoop_rename(uri, fs, tmp, path, overwrite=False)
        finally:
            if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                fs.delete_file(tmp)
    except (OSError, ValueError) as err:
        raise _wrap("create", uri, err) from None


def _create_exclusive_local(path: str, data: bytes) -> bool:
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
        with open(tmp, "wb") as out:
            out.write(data)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
    except OSError as err:
        raise _wrap("create", path, err) from None


def s3_client():
    """A boto3 S3 client with this process's settings (endpoint, path style, keys or anonymous)."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    settings = current_settings()
    session = boto3.session.Session()
    config = Config(retries={"max_attempts": 5, "mode": "standard"},
                    s3={"addressing_style": "path"} if settings.s3_path_style else None)
    options = {"endpoint_url": settings.s3_endpoint} if settings.s3_endpoint else {}
    if settings.s3_region:
        options["region_name"] = settings.s3_region
    if settings.s3_access_key and settings.s3_secret_key:
        options.update(aws_access_key_id=settings.s3_access_key, aws_secret_access_key=settings.s3_secret_key)
    elif settings.s3_anonymous or session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    return session.client("s3", config=config, **options)


def _read_s3(uri: str) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(uri)
    try:
        return _cached_s3_client().get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise FsError(f"cannot read {uri}: no such object") from None
        raise _wrap("read", uri, err) from None
    except BotoCoreError as err:
        raise _wrap("read", uri, err) from None


_s3_clients: dict = {}


def _cached_s3_client():
    """One client per settings in this process (a client takes tens of milliseconds to make)."""
    client = _s3_clients.get(_settings)
    if client is None:
        client = _s3_clients[_settings] = s3_client()
    return client


def _create_exclusive_s3(uri: str, data: bytes) -> bool:
    from botocore.exceptions import ClientError

    parts = urlsplit(uri)
    client = _cached_s3_client()
    for attempt in range(6):
        try:
            client.put_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"), Body=data, IfNoneMatch="*")
            return True
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return False
            if code == "ConditionalRequestConflict" or status == 409:  # a racing conditional PUT: ask again
                time.sleep(0.2 * 2 ** attempt)
                continue
            raise _wrap("create", uri, err) from None
    raise FsError(f"cannot create {uri}: S3 kept answering 409 ConditionalRequestConflict")


def _create_exclusive_hadoop(uri: str, data: bytes) -> bool:
    if _hadoop is None:
        raise FsError(f"cannot create {uri} exclusively: {scheme_of(uri)}: needs the driver's Hadoop filesystem "
                      f"(imagerank.fs.use_hadoop(spark))")
    jvm, conf, _ = _hadoop
    path = jvm.org.apache.hadoop.fs.Path(uri)
    try:
        hfs = path.getFileSystem(conf)
        if scheme_of(uri) == "gs":
            try:  # the object is uploaded at close, with its generation-0 precondition: a racer's upload fails there
                out = hfs.create(path, False)
                out.write(bytearray(data))
                out.close()
            except Exception as err:  # noqa: BLE001 - py4j wraps FileAlreadyExistsException and the failed upload
                if "FileAlreadyExists" in str(err) or hfs.exists(path):
                    return False
                raise
            return True
        tmp = jvm.org.apache.hadoop.fs.Path(path.getParent(), f".{path.getName()}.tmp-{uuid.uuid4().hex[:8]}")
        out = hfs.create(tmp, True)
        out.write(bytearray(data))
        out.close()
        try:
            return bool(hfs.rename(tmp, path))  # false where the name exists: nothing overwritten
        finally:
            hfs.delete(tmp, False)
    except Exception as err:  # noqa: BLE001 - py4j wraps Hadoop's IOException
        raise FsError(f"cannot create {uri}: {_java_message(err)}") from None


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
    """Folders exist on disks and HDFS. S3 has none, and needs none: pyarrow lists a folder's
    subfolders from the common prefixes. On GCS pyarrow's folders are empty marker objects
    (``folder/``), the only subfolders its listing sees (it asks for no prefixes), so a file's
    folders get their markers where they lack them: the commit finds the run folders by listing."""
    scheme = scheme_of(uri)
    if parent and (scheme not in OBJECT_STORES or scheme == "gs"):
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
