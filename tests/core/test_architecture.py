"""Plugins import the core only through ``fvc_core.contract``, and never another plugin distribution.

Read from the source (AST), so an import inside a function, ``import fvc_core.x`` and
``from fvc_core import x`` count alike: a plugin written against the contract keeps working
whatever the core's modules become, and one distribution installs without another.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
CONTRACT = "fvc_core.contract"


def distribution_packages() -> dict[Path, set[str]]:
    """Each plugin distribution's folder -> the top-level packages it ships (its pyproject.toml's
    ``packages.find`` include patterns, else the folders beside it that hold an ``__init__.py``)."""
    found: dict[Path, set[str]] = {}
    for pyproject in sorted(PLUGINS.glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        setuptools = data.get("tool", {}).get("setuptools", {})
        patterns = (setuptools.get("packages", {}) if isinstance(setuptools.get("packages"), dict) else {}
                    ).get("find", {}).get("include", [])
        names = {re.split(r"[.*]", p)[0] for p in patterns} or {
            d.name for d in pyproject.parent.iterdir() if (d / "__init__.py").is_file()}
        found[pyproject.parent] = names
    return found


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, at the top or inside a function; ``from a import b``
    gives ``a.b`` (b may be a module), a relative import is its own distribution's."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def offences(source: str, own: set[str], others: set[str]) -> list[str]:
    """Why each import of ``source`` breaks the rule: a core module other than the contract, or a
    package of another plugin distribution."""
    found = []
    for line, module in imported_modules(source):
        top = module.split(".")[0]
        if top == "fvc_core" and not (module == CONTRACT or module.startswith(CONTRACT + ".")):
            found.append(f"{line}: {module} (the core only through {CONTRACT})")
        elif top in others and top not in own:
            found.append(f"{line}: {module} (another plugin distribution's package {top})")
    return found


def test_every_plugin_imports_only_the_contract_and_its_own_packages():
    packages = distribution_packages()
    assert len(packages) >= 9 and all(packages.values()), packages  # the reader of pyproject.toml works
    everyone = set().union(*packages.values())
    problems = []
    for folder, own in packages.items():
        for path in sorted(folder.rglob("*.py")):
            problems += [f"{path.relative_to(REPO)}:{o}" for o in offences(path.read_text(), own, everyone - own)]
    assert problems == [], "\n".join(problems)


def test_the_rule_catches_every_way_of_importing():
    own, others = {"fvc_a"}, {"fvc_b"}
    source = (
        "import fvc_core.atomic\n"
        "from fvc_core import ownership\n"
        "from fvc_core.contract import UserError\n"
        "import fvc_core.contract\n"
        "def f():\n"
        "    from fvc_core.training.predict import run_folds\n"
        "    import fvc_b.x\n"
        "    from fvc_b import y\n"
        "    from fvc_a.z import w\n"
        "    from . import v\n"
    )
    assert [o.split(":")[0] for o in offences(source, own, others)] == ["1", "2", "6", "7", "8"]


def test_every_name_the_contract_offers_is_there():
    # The heavier names are looked up on first use: a misspelt home would only fail in a plugin's command.
    from fvc_core import contract

    missing = [name for name in contract.__all__ if getattr(contract, name, None) is None]
    assert missing == []
    assert sorted(set(contract.__all__)) == sorted(contract.__all__)
