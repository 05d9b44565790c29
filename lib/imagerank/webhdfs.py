"""HDFS over WebHDFS, the NameNode's REST API: HDFS from any Python process with no libhdfs and no JVM.

fsspec's ``WebHDFS`` client with two changes that :mod:`imagerank.fs` needs: every failure is an
``OSError`` (fsspec raises ``RuntimeError`` for most remote exceptions), and :meth:`WebHdfs.rename`
says whether it renamed, with or without overwriting (``renameoptions=OVERWRITE``: one atomic
step at the NameNode, so a marker replaced this way is never missing). Reads are ranged
(``OPEN`` with ``offset``), so a reader that reconnects at a byte reads on from it.
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
