"""aiosmtpd's Controller, imported beside our own ``public`` package.

aiosmtpd needs ``atpublic``, whose module is also named ``public``: the project's
``public`` (the public web site) would shadow it.  aiosmtpd only uses its
``@public`` decorator at import time, so atpublic's module is put in its place for
the import and ours is put back after.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import sysconfig
from pathlib import Path


def _import_controller():  # type: ignore[no-untyped-def]
    init = Path(sysconfig.get_paths()["purelib"]) / "public" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "public", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    atpublic = importlib.util.module_from_spec(spec)
    ours = {k: v for k, v in sys.modules.items() if k == "public" or k.startswith("public.")}
    for k in ours:
        del sys.modules[k]
    sys.modules["public"] = atpublic
    try:
        spec.loader.exec_module(atpublic)
        return importlib.import_module("aiosmtpd.controller").Controller
    finally:
        for k in [k for k in sys.modules if k == "public" or k.startswith("public.")]:
            del sys.modules[k]
        sys.modules.update(ours)


Controller = _import_controller()
