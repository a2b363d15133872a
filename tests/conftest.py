import os

# A missing Julia must fail at once instead of trying the network.
os.environ.setdefault("PYTHON_JULIAPKG_OFFLINE", "yes")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA device on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
