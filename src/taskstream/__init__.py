"""taskstream: high-volume task ingestion through Kafka.

The shells (``consumers/`` and ``workers/``) are top-level folders of the repository, apart from
the library, but they import as ``taskstream.consumers`` and ``taskstream.workers``: the wheel
installs them inside this package (pyproject ``force-include``), so site-packages holds no
generic top-level ``consumers`` or ``workers``. In a checkout or an editable install they sit
beside ``src/``, and ``_mount_shells`` gives them the same names.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SHELLS = ("consumers", "workers")


def _mount_shells() -> None:
    package = Path(__file__).parent
    checkout = package.parent.parent
    for shell in SHELLS:
        name = f"{__name__}.{shell}"
        init = checkout / shell / "__init__.py"
        if (package / shell).is_dir() or name in sys.modules or not init.is_file():
            continue  # installed inside the package, already mounted, or not a checkout
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(init.parent)]
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        globals()[shell] = module


_mount_shells()
