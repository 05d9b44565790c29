"""HDFS over WebHDFS, the NameNode's REST API: HDFS from any Python process with no libhdfs and no JVM.

fsspec's ``WebHDFS`` client with two changes that :mod:`imagerank.fs` needs: every failure is an
``OSError`` (fsspec raises ``RuntimeError`` for most remote exceptions), and :meth:`WebHdfs.rename`
says whether it renamed, with or without overwriting (``renameoptions=OVERWRITE``: one atomic
step at the NameNode, so a marker replaced this way is never missing). Streams read ranges
(``OPEN`` with ``offset``, after a size lookup); :meth:`WebHdfs.read_whole` reads a file in one
``OPEN``, so a file replaced while it is read (the marker) is read whole, old or new.
"""

from __future__ import annotations

from fsspec.implementations.webhdfs import WebHDFS


class WebHdfs(WebHDFS):
    def _call(self, op, method="get", path=None, data=None, redirect=True, **kwargs):
        try:
            return super()._call(op, method=method, path=path, data=data, redirect=redirect, **kwargs)
        except OSError:
            raise
        except Exception as err:  # noqa: BLE001 - RuntimeError, requests' errors: one kind for callers
            raise OSError(f"WebHDFS {op} {path}: {err}") from err

    def rename(self, source: str, target: str, overwrite: bool) -> bool:
        """Rename ``source`` to ``target``; False (nothing changed) where ``target`` exists and not ``overwrite``."""
        if overwrite:
            self._call("RENAME", method="put", path=source, destination=self._strip_protocol(target),
                       renameoptions="OVERWRITE")
            return True
        answer = self._call("RENAME", method="put", path=source, destination=self._strip_protocol(target))
        return bool(answer.json().get("boolean"))

    def read_whole(self, path: str) -> bytes:
        """A whole file in one ``OPEN`` with no length: the NameNode resolves the name once, so a file
        replaced meanwhile is read whole, old or new (a size lookup, then a ranged read, would read the
        new file cut to the old one's length)."""
        answer = self._call("OPEN", path=path, redirect=False)
        location = answer.headers.get("Location")
        if location is None:
            return answer.content
        try:
            data = self.session.get(self._apply_proxy(location))
            data.raise_for_status()
        except Exception as err:  # noqa: BLE001 - requests' errors: one kind for callers
            raise OSError(f"WebHDFS OPEN {path}: {err}") from err
        return data.content
