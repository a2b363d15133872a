"""Starting Julia through juliacall, once, with PySR's settings, and reporting its state."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import warnings
from pathlib import Path

INSTALL_HINT = (
    "Install the Julia backend with `pip install pyude[julia]`; the first import of juliacall "
    "then downloads Julia and the packages in pyude/juliapkg.json (once, it takes minutes). "
    "To use an existing Julia, set PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT. Run "
    "`pyude doctor` to see what is missing. Or use backend=\"native\", which needs no Julia."
)
PACKAGE_DIR = Path(__file__).resolve().parent / "PyUDE"

# juliacall's settings as PySR sets them, so that pyude and PySR share one Julia runtime.
JULIACALL_DEFAULTS = {
    "PYTHON_JULIACALL_HANDLE_SIGNALS": "yes",
    "PYTHON_JULIACALL_THREADS": "auto",
    "PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION": "no",
}

_STATE: dict = {}


class JuliaUnavailableError(RuntimeError):
    """The Julia backend was asked for but Julia (or juliacall) cannot be started."""


def _julia_executable() -> str | None:
    exe = os.environ.get("PYTHON_JULIACALL_EXE") or os.environ.get("PYTHON_JULIAPKG_EXE")
    return exe or shutil.which("julia") or shutil.which("juliaup")


def available() -> bool:
    """Whether the Julia backend can start: juliacall is installed and a Julia is known (or
    juliacall has already started one). Never starts Julia itself."""
    if "juliacall" in sys.modules:
        return hasattr(sys.modules["juliacall"], "Main")
    if importlib.util.find_spec("juliacall") is None:
        return False
    return _julia_executable() is not None


def init():
    """Start Julia (once) and load pyude's Julia package; returns the `PyUDE` module."""
    if "module" in _STATE:
        return _STATE["module"]
    if importlib.util.find_spec("juliacall") is None:
        raise JuliaUnavailableError(f"juliacall is not installed. {INSTALL_HINT}")
    if "juliacall" not in sys.modules:
        for key, value in JULIACALL_DEFAULTS.items():
            os.environ.setdefault(key, value)
        if "torch" in sys.modules:
            warnings.warn(
                "torch was imported before juliacall, which can crash the process when Julia "
                "starts (pytorch issue 78829). In programs that use backend='julia', put "
                "`import juliacall` before `import torch` and `import pyude`.",
                RuntimeWarning, stacklevel=3)
    try:
        import juliacall
        jl = juliacall.newmodule("PyUDEBackend")
        jl.seval("import PyUDE")
        module = jl.PyUDE
    except Exception as err:  # juliapkg raises plain Exception ("could not find Julia")
        raise JuliaUnavailableError(f"Julia could not be started: {err}. {INSTALL_HINT}") from err
    _STATE["module"] = module
    return module


def doctor_report() -> list[tuple[str, str, str]]:
    """(piece, state, what to do) for everything the optional backends need."""
    import platform

    import torch

    rows = [("Python", platform.python_version(), ""),
            ("torch", f"{torch.__version__} (CUDA available: {torch.cuda.is_available()})", "")]
    for name, extra in [("juliacall", "julia"), ("pysr", "pysr"), ("pysindy", "sindy"),
                        ("pyoperon", "operon"), ("diffeqpy", "julia"), ("matplotlib", "plot")]:
        found = importlib.util.find_spec(name) is not None
        rows.append((name, "installed" if found else "missing",
                     "" if found else f"pip install pyude[{extra}]"))
    exe = _julia_executable()
    rows.append(("Julia executable", exe or "not found",
                 "" if exe else "installed by juliacall on first use, or set PYTHON_JULIACALL_EXE"))
    offline = os.environ.get("PYTHON_JULIAPKG_OFFLINE", "")
    rows.append(("PYTHON_JULIAPKG_OFFLINE", offline or "unset",
                 "unset it to let juliacall install Julia" if offline == "yes" else ""))
    rows.append(("pyude Julia package", str(PACKAGE_DIR),
                 "" if (PACKAGE_DIR / "Project.toml").exists() else "reinstall pyude"))
    state = "started" if "module" in _STATE else ("startable" if available() else "unavailable")
    rows.append(("Julia backend", state, "" if state != "unavailable" else INSTALL_HINT))
    return rows
