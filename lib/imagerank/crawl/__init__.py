"""Crawl stage: Common Crawl WARC/WAT files to pages, image embeds and page links."""
