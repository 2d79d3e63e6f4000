"""Every module says what it exports (``__all__``), and says it truthfully (as httpx checks)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ("features", "models", "serving", "simulator", "pipelines")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names += [
            info.name
            for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
            if not info.ispkg or info.name == "serving.crm"
        ]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_a_module_exports_exactly_what_it_lists(name):
    module = importlib.import_module(name)
    listed = getattr(module, "__all__", None)
    assert listed is not None, f"{name} has no __all__"
    assert len(listed) == len(set(listed)), f"{name}: a name is listed twice"
    missing = [n for n in listed if not hasattr(module, n)]
    assert not missing, f"{name} lists names it does not define: {missing}"
    # Functions and classes a module lists are its own or re-exported on purpose from the same
    # package (serving.crm gathers its submodules'), never from another library.
    foreign = [
        n for n in listed
        if (inspect.isfunction(getattr(module, n)) or inspect.isclass(getattr(module, n)))
        and not getattr(module, n).__module__.startswith(name.split(".")[0])
    ]
    assert not foreign, f"{name} exports other libraries' objects: {foreign}"


def test_nothing_happens_at_import():
    """Importing the packages starts no server, writes no file and reads no environment into
    state: only definitions (the home folder is made when a command asks for it)."""
    import os

    before = set(os.listdir("."))
    for name in _modules():
        importlib.import_module(name)
    assert set(os.listdir(".")) == before
