"""imagerank: image authority and popularity for an open image search engine, from Common Crawl."""

from imagerank import zip_archives as _zip_archives

__version__ = "0.3.0"

_zip_archives.install()  # PySpark workers: no re-read of Spark's own zip archives at each task
