"""Starting Julia through juliacall, once, with PySR's settings, and reporting its state."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

INSTALL_HINT = (
    "Install the Julia backend with `pip install pyude[julia]` (in a source checkout: "
    "`pip install -e \".[julia]\"`); the first import of juliacall "
    "then downloads Julia and the packages in pyude's juliapkg.json (once, it takes minutes). "
    "To use an existing Julia, set both PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT. Run "
    "`pyude doctor` to see what is missing. Or use backend=\"native\", which needs no Julia."
)


def _package_dir() -> Path:
    """The Julia package: inside the installed wheel beside this file, or at the top of a
    source checkout (`julia/PyUDE`)."""
    here = Path(__file__).resolve().parent
    shipped = here / "PyUDE"
    return shipped if shipped.is_dir() else here.parents[1] / "julia" / "PyUDE"


PACKAGE_DIR = _package_dir()
ENTRY_FILE = PACKAGE_DIR / "src" / "PyUDE.jl"

# juliacall's settings as PySR sets them, so that pyude and PySR share one Julia runtime.
JULIACALL_DEFAULTS = {
    "PYTHON_JULIACALL_HANDLE_SIGNALS": "yes",
    "PYTHON_JULIACALL_THREADS": "auto",
    "PYTHON_JULIACALL_OPTLEVEL": "3",
    "PYTHON_JULIACALL_AUTOLOAD_IPYTHON_EXTENSION": "no",
}

_STATE: dict = {}


class JuliaUnavailableError(RuntimeError):
    """The Julia backend was asked for but Julia (or juliacall) cannot be started."""


def _juliapkg_project() -> Path:
    """The Julia environment juliapkg uses, by juliapkg's own rules (state.py), without
    importing it."""
    project = os.environ.get("PYTHON_JULIAPKG_PROJECT")
    if project:
        return Path(project)
    prefix = sys.prefix if sys.prefix != sys.base_prefix else os.environ.get("CONDA_PREFIX")
    if prefix:
        return Path(os.path.abspath(os.path.join(prefix, "julia_env")))
    depot = (os.environ.get("JULIA_DEPOT_PATH") or "").split(os.pathsep)[0]
    depot = depot or os.path.join(os.path.expanduser("~"), ".julia")
    return Path(depot) / "environments" / "pyjuliapkg"


def _juliapkg_executable() -> str | None:
    """The Julia juliapkg resolved (recorded in its meta.json) or installed under its prefix."""
    prefix = _juliapkg_project() / "pyjuliapkg"
    try:
        exe = json.loads((prefix / "meta.json").read_text()).get("executable")
    except (OSError, ValueError, AttributeError):
        exe = None
    if exe and os.path.isfile(exe):
        return exe
    installed = prefix / "install" / "bin" / ("julia.exe" if os.name == "nt" else "julia")
    return str(installed) if installed.is_file() else None


def julia_executable() -> str | None:
    """The Julia juliacall would start, as far as can be told without starting it."""
    if os.environ.get("PYTHON_JULIACALL_EXE") and os.environ.get("PYTHON_JULIACALL_PROJECT"):
        return os.environ["PYTHON_JULIACALL_EXE"]
    return (os.environ.get("PYTHON_JULIAPKG_EXE") or _juliapkg_executable()
            or shutil.which("juliaup") or shutil.which("julia"))


def available() -> bool:
    """Whether the Julia backend can start: juliacall is installed and a Julia is known (or
    juliacall has already started one), and no earlier start failed. Never starts Julia."""
    if "error" in _STATE:
        return False
    if "module" in _STATE:
        return True
    if "juliacall" in sys.modules:
        return hasattr(sys.modules["juliacall"], "Main")
    if importlib.util.find_spec("juliacall") is None:
        return False
    return julia_executable() is not None


def configure() -> None:
    """Set juliacall's settings (PySR's defaults) before juliacall is first imported; warn
    about an import order known to crash. Starts nothing."""
    if "juliacall" in sys.modules:
        return
    for key, value in JULIACALL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if "torch" in sys.modules:
        warnings.warn(
            "torch was imported before juliacall, which can crash the process when Julia "
            "starts (pytorch issue 78829). In programs that use backend='julia', put "
            "`import juliacall` before `import torch` and `import pyude`.",
            RuntimeWarning, stacklevel=4)


def init():
    """Start Julia (once) and load pyude's Julia package; returns the `PyUDE` module.

    The package is included from its source file, not added to the Julia environment, so a
    problem in it cannot stop PySR (which shares the environment) from loading."""
    if "module" in _STATE:
        return _STATE["module"]
    if "error" in _STATE:
        raise JuliaUnavailableError(_STATE["error"])
    if importlib.util.find_spec("juliacall") is None:
        raise JuliaUnavailableError(f"juliacall is not installed. {INSTALL_HINT}")
    configure()
    try:
        import juliacall
        jl = juliacall.newmodule("PyUDEBackend")
        jl.include(str(ENTRY_FILE))
        module = jl.PyUDE
    except Exception as err:  # juliapkg raises plain Exception ("could not find Julia")
        _STATE["error"] = f"Julia could not be started: {err}. {INSTALL_HINT}"
        raise JuliaUnavailableError(_STATE["error"]) from err
    _STATE["module"] = module
    return module


def start_failure() -> str | None:
    """Why the Julia backend cannot be used now (starting Julia if it has not started), or
    None when it can: what `backend="auto"` asks before it picks Julia."""
    if not available():
        return "Julia is not installed"
    try:
        init()
    except JuliaUnavailableError as err:
        return str(err)
    return None


def diffeqpy_de():
    """diffeqpy's `de` module on the Julia juliacall runs: diffeqpy 2.6 looks for `julia` on
    PATH and otherwise installs a second Julia, so the running Julia's bin directory is put on
    PATH first."""
    jl = init()
    bindir = str(jl.seval("Sys.BINDIR")) if hasattr(jl, "seval") else None
    if bindir and bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    from diffeqpy import de
    return de


def _compiled_rows() -> list[tuple[str, str, str]]:
    """numba (the compiled backend) and the folder its generated model code is cached in."""
    if importlib.util.find_spec("numba") is None:
        return [("numba", "missing", "pip install numba (the compiled backend)")]
    import numba

    from ..backends.numba._cache import cache_dir
    return [("numba", numba.__version__, ""),
            ("compiled-model cache", str(cache_dir()), "set PYUDE_CACHE_DIR to move it")]


def doctor_report() -> list[tuple[str, str, str]]:
    """(piece, state, what to do) for everything the optional backends need."""
    import platform

    import torch

    rows = [("Python", platform.python_version(), ""),
            ("torch", f"{torch.__version__} (CUDA available: {torch.cuda.is_available()})", ""),
            *_compiled_rows()]
    for name, extra in [("juliacall", "julia"), ("pysr", "pysr"), ("pysindy", "sindy"),
                        ("pyoperon", "operon"), ("diffeqpy", "diffeqpy"), ("matplotlib", "plot"),
                        ("distributed", "ensemble")]:
        found = importlib.util.find_spec(name) is not None
        rows.append((name, "installed" if found else "missing",
                     "" if found else f"pip install pyude[{extra}]"))
    exe = julia_executable()
    half = bool(os.environ.get("PYTHON_JULIACALL_EXE")) != bool(
        os.environ.get("PYTHON_JULIACALL_PROJECT"))
    rows.append(("Julia executable", exe or "not found",
                 "set both PYTHON_JULIACALL_EXE and PYTHON_JULIACALL_PROJECT, or neither"
                 if half else "" if exe else
                 "installed by juliacall on first use, or set PYTHON_JULIAPKG_EXE"))
    offline = os.environ.get("PYTHON_JULIAPKG_OFFLINE", "")
    rows.append(("PYTHON_JULIAPKG_OFFLINE", offline or "unset",
                 "unset it to let juliacall install Julia" if offline == "yes" else ""))
    rows.append(("pyude Julia package", str(PACKAGE_DIR),
                 "" if ENTRY_FILE.is_file() else "reinstall pyude"))
    state = "started" if "module" in _STATE else ("startable" if available() else "unavailable")
    rows.append(("Julia backend", state, "" if state != "unavailable" else
                 _STATE.get("error", INSTALL_HINT)))
    rows.append(("Julia tests", "PYTHON_JULIAPKG_OFFLINE=no pytest -m julia -rA tests/",
                 "from a source checkout"))
    return rows
