"""The layers import downwards only: features -> models -> serving -> pipelines.

The simulator (``simulator/``) is a tool beside the pipelines: it may use ``features`` and
``serving``; ``features``, ``models`` and ``serving`` never import it, and of ``pipelines`` only
the command line and the flows do (they build the oracle that training is handed). Imports are
read from the source with :mod:`ast`, those inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("features", "models", "serving", "pipelines")
#: What each package must never import.
FORBIDDEN = {
    "features": {"models", "serving", "pipelines", "simulator"},
    "models": {"serving", "pipelines", "simulator"},
    "serving": {"pipelines", "simulator"},
    "pipelines": {"simulator"},
    "simulator": {"models", "pipelines"},
}
#: The glue that builds a simulated community or its oracle for the user.
SIMULATOR_USERS = {"pipelines/cli.py", "pipelines/flows.py"}


def _imported(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a module (relative imports stay inside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules() -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix()
        for package in FORBIDDEN
        for p in (ROOT / package).rglob("*.py")
    )


def test_every_package_is_walked():
    walked = {name.split("/")[0] for name in _modules()}
    assert walked == set(FORBIDDEN)
    assert all((ROOT / name).is_file() for name in SIMULATOR_USERS)


@pytest.mark.parametrize("name", _modules())
def test_a_module_imports_no_layer_above_it(name):
    package = name.split("/")[0]
    forbidden = set(FORBIDDEN[package])
    if name in SIMULATOR_USERS:
        forbidden.discard("simulator")
    wrong = sorted(_imported(ROOT / name) & forbidden)
    assert not wrong, f"{name} imports {wrong}"


def test_the_layer_check_reads_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nfrom . import sibling\n\ndef f():\n    from simulator.truth import encode\n"
        "    import serving.score as s\n",
        encoding="utf-8",
    )
    assert _imported(source) == {"os", "simulator", "serving"}
