"""numba's cache of this package's kernels, stamped with all of the package's source.

numba keys a cached function by its own file's content, so a kernel cached from `_loop.py`
would keep an older copy of a function it calls from `_control.py` or `_rosenbrock.py` after
that file changed. Every function cached from this folder is stamped here with a hash of
every module in the folder instead: any change recompiles them all (once).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

HERE = Path(__file__).resolve().parent
# (`_CacheImpl` in older numba)
_IMPL = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")


@functools.lru_cache(maxsize=None)
def _hash(folder: Path, files: tuple) -> bytes:
    digest = hashlib.sha256()
    for name, _mtime, _size in files:
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return digest.digest()


def package_stamp(folder: Path = HERE) -> bytes:
    """A hash of the content of every module in `folder`, read again when one of them
    changes (numba asks for the stamp at every cache load and save)."""
    files = tuple((path.name, path.stat().st_mtime_ns, path.stat().st_size)
                  for path in sorted(folder.glob("*.py")))
    return _hash(folder, files)


class PackageStampLocator(caching._CacheLocator):
    """numba's own locator for the file (the same cache folder), with the package stamp."""

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return package_stamp()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != HERE:
            return None
        for base in _IMPL._locator_classes:
            if base is not cls:
                inner = base.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


def install() -> None:
    """Put the locator first (before any function of this package is decorated)."""
    if PackageStampLocator not in _IMPL._locator_classes:
        _IMPL._locator_classes.insert(0, PackageStampLocator)
