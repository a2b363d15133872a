"""Compiled models: generated source written to a per-user cache folder as a module file
named by a hash of the source and of pyude's and numba's versions, and imported from there,
so that numba's own on-disk cache (next to the file) serves the next process. Source that
is exec'd instead has no file for numba to key its cache on.

The folder is `PYUDE_CACHE_DIR`, else `$XDG_CACHE_HOME/pyude`, else `~/.cache/pyude`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numba

from ..._version import __version__ as pyude_version

_LOADED: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    """Where generated models and numba's cache of them live."""
    root = os.environ.get("PYUDE_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pyude"


def source_key(source: str) -> str:
    """The cache key: the generating source with the versions that compile it."""
    text = "\n".join([source, f"pyude {pyude_version}", f"numba {numba.__version__}"])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(source: str) -> ModuleType:
    """The module for `source`: from this process's memory, else from the cache folder
    (written there first if new)."""
    key = source_key(source)
    module = _LOADED.get(key)
    if module is None:
        module = _import(_write(source, key), f"pyude_model_{key}")
        _LOADED[key] = module
    return module


def _write(source: str, key: str) -> Path:
    folder = cache_dir() / "numba"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pyude_model_{key}.py"
    if not path.exists():
        # written whole, then renamed: another process never imports half a file
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(source)
        os.replace(tmp, path)
    return path


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
