"""Print pip constraints that pin every dependency of pyproject.toml to its lowest version.

Usage: ``python .ci/lowest_constraints.py [EXTRA ...] > constraints.txt``: the project's
dependencies, and those of the extras named, each pinned to its ``>=`` (or ``==``) bound. Run by
``make test-lowest``, which installs the project with these pins and runs the fast tests: a
declared lower bound that does not install or does not pass is found by CI, not by a user.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]
for requirement in requirements:
    name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)
    bound = re.search(r"(?:>=|==)\s*([0-9][^,;\s\]]*)", requirement)
    if bound is None:
        sys.exit(f"{requirement!r} has no lower bound: declare one (>=) in pyproject.toml")
    print(f"{name}=={bound.group(1)}")
