"""MLflow is called from one module only: ``models/registry.py``.

Every other module reaches the tracking store, the registry and the models in it through
:mod:`models.registry`; the promotion rules (:mod:`models.gate`), the orchestration
(:mod:`models.workflow`) and what a run records (:mod:`models.run_record`) stay free of MLflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "models", "serving", "pipelines", "benchmarks")
BOUNDARY = "models/registry.py"


def _imports_mlflow(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "mlflow" or name.startswith("mlflow.") for name in names):
            return True
    return False


def test_only_the_registry_imports_mlflow():
    modules = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    assert len(modules) > 50  # the walk found the packages
    importers = [p.relative_to(ROOT).as_posix() for p in modules if _imports_mlflow(p)]
    assert importers == [BOUNDARY]


def test_the_gate_and_the_workflow_stay_free_of_mlflow():
    for name in ("models/gate.py", "models/run_record.py", "models/workflow.py"):
        assert not _imports_mlflow(ROOT / name), name
