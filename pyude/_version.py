"""The package version, in one place (the package, its caches and `pyude --version` read it)."""

__version__ = "0.1.0"
