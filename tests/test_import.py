import subprocess
import sys


def test_import_pyude_starts_no_julia_and_no_optional_package():
    code = ("import sys, pyude; heavy = [m for m in ('juliacall', 'pysr', 'pysindy', "
            "'pyoperon', 'matplotlib', 'diffeqpy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_import_pyude_leaves_numba_and_dask_unloaded():
    import subprocess
    import sys
    code = ("import sys, pyude; "
            "print(sorted(m for m in ('numba', 'dask', 'juliacall') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
