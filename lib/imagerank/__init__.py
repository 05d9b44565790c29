"""imagerank: image authority and popularity for an open image search engine, from Common Crawl."""

__version__ = "0.3.0"
