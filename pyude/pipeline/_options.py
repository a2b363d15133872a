"""The run's options checked before any work, and the report folder made ready."""

from __future__ import annotations

import importlib.util
import math
import platform
from pathlib import Path

REPORT_FILES = ("report.md", "results.json", "fit.png", "terms.png", "extrapolation.png")


def check_options(*, backend, regression, parsimony, noise, data_given, holdout, degree,
                  refit_iters, per_target, adam_iters, lbfgs_iters, collocation_iters,
                  adam_lr) -> None:
    """Refuse, with a message, any option out of range or of the wrong type."""
    from ..train import _check_schedule
    if backend not in ("auto", "native"):
        raise ValueError(f"the discovery pipeline runs on the native backend or, for its UDE "
                         f"fit, on the one backend='auto' picks; got backend={backend!r} (the "
                         f"symbolic regression is chosen with regression=, one of sindy, "
                         f"pysr, operon, auto)")
    check_requirements(regression)
    if not _is_number(parsimony) or not 0 <= parsimony < math.inf:
        raise ValueError(f"parsimony must be a BIC margin >= 0 (6: an extra term needs "
                         f"strong evidence; 0: the lowest BIC wins); got {parsimony!r}")
    if noise is not None:
        if data_given:
            raise ValueError("noise sets the noise of simulated data; with your own data "
                             "(t and data, or --data) leave it out")
        if not _is_number(noise) or not 0 <= noise <= 1:
            raise ValueError(f"noise must be a fraction from 0 to 1 of each state's mean "
                             f"(0.05 is 5%); got {noise!r}")
    if holdout is not None and (not _is_number(holdout) or not 0 <= holdout <= 0.5):
        raise ValueError(f"holdout must be a fraction from 0 to 0.5 of the observations (the "
                         f"last ones, kept out of the fit to check the model); got "
                         f"{holdout!r}")
    if degree is not None and (not _is_whole(degree) or not 1 <= degree <= 6):
        raise ValueError(f"degree must be a whole number from 1 to 6 (the polynomial "
                         f"library's highest degree); got {degree!r}")
    for name, value in (("refit_iters", refit_iters), ("per_target", per_target)):
        if not _is_whole(value) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1; got {value!r}")
    _check_schedule(adam_iters=adam_iters, lbfgs_iters=lbfgs_iters,
                    collocation_iters=collocation_iters, adam_lr=adam_lr, collocation_lr=0.01,
                    windows=None, patience=None, divergence=1e4, target_loss=None)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and not math.isnan(value)


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_requirements(regression: str) -> None:
    """Refuse before any work when a package the run will need is missing."""
    from ..discovery import BACKENDS
    if regression not in BACKENDS:
        raise ValueError(f"unknown symbolic-regression backend {regression!r}; choose one of "
                         f"{', '.join(BACKENDS)}")
    needs = {"pysindy": "pyude[discovery]", "scipy": "pyude[discovery]"}
    needs.update({"pysr": {"pysr": "pyude[pysr]"}, "operon": {"pyoperon": "pyude[operon]"}}
                 .get(regression, {}))
    missing = {m: extra for m, extra in needs.items() if importlib.util.find_spec(m) is None}
    if missing:
        raise ImportError(f"the discovery pipeline needs {', '.join(missing)} (smoothing, the "
                          f"candidate library and the {regression} regression): pip install "
                          + " ".join(f"'{e}'" for e in sorted(set(missing.values()))))


def prepare_out(out, force: bool) -> Path:
    """The report folder, made and checked writable; one that holds a report already is
    refused unless `force` (then its old report files are removed first)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the report folder {out} is a file; give a folder (--out DIR)")
    if out.is_dir():
        existing = [name for name in REPORT_FILES if (out / name).exists()]
        if existing and not force:
            raise ValueError(f"{out} already holds a report ({', '.join(existing)}); pass "
                             f"--force (force=True) to replace it, or give another folder")
        for name in existing:
            (out / name).unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".pyude-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write the report into {out}: {err.strerror or err}") \
            from err
    return out


def versions() -> dict[str, str]:
    import sympy
    import torch

    from .._version import __version__
    return dict(pyude=__version__, python=platform.python_version(), torch=torch.__version__,
                sympy=sympy.__version__)
