"""Where the API's worker processes keep their metric values (prometheus-client's multi-process
mode). Apart from ``metrics.py`` on purpose: prometheus-client chooses between in-memory and
file-backed values when it is first imported, so the directory must be set before that import,
in the process that then starts (forks) the workers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

# prometheus-client's own contract, read by the library itself: an environment variable, not a
# taskstream setting.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(directory: Path) -> None:
    """Empty ``directory`` and point prometheus-client at it; call before anything imports
    prometheus-client in this process or in the workers it starts."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
