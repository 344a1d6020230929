"""The package's layering: a module imports only from its own layer or below, so data flows one
way (structures in, arrays out, numbers and files at the end). Run as a script to list every
upward import: `python tests/test_layers.py`."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "crystal_metrics"

#: Layers, lowest first; a module's layer is that of the longest prefix of its dotted name here.
LAYERS = (
    # the exceptions, records of unusable structures, progress, processes, devices, files
    ("errors", "failures", "progress", "parallel", "device", "distributed", "cachedir", "weights",
     "download", "references"),
    ("crystal",),
    ("io",),
    ("metrics", "alignn", "cdvae"),  # arrays -> numbers; the models themselves
    ("features",),  # per-structure descriptors, through the cache
    ("scoring", "mlip", "cdvae_energy", "protocols"),  # set-level scores from features
    ("results", "api", "tables"),  # result objects and the public functions that make them
    ("cli", "report", "torchmetrics", "__init__", "__main__"),
)


def layer_of(module: str) -> int:
    """Layer index of `module` (dotted, below the package), by its first component."""
    first = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if first in names:
            return rank
    raise KeyError(f"crystal_metrics.{module} is in no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports(path: Path) -> list[str]:
    """Modules of the package that `path` imports (relative or absolute, anywhere in the file)."""
    module = _module_name(path)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if path.relative_to(PACKAGE).parts == ("__init__.py",):
        package = []
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = ([".".join([*base, node.module])] if node.module
                         else [".".join([*base, alias.name]) for alias in node.names])
            elif node.module and node.module.split(".")[0] == "crystal_metrics":
                names = [node.module[len("crystal_metrics."):]] if "." in node.module else \
                    [alias.name for alias in node.names]
            else:
                continue
            found += [name for name in names if name]
        elif isinstance(node, ast.Import):
            found += [a.name[len("crystal_metrics."):] for a in node.names
                      if a.name.startswith("crystal_metrics.")]
    return found


def upward_imports() -> list[tuple[str, str]]:
    """(importer, imported) pairs where the imported module sits in a higher layer."""
    arrows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path) or "__init__"
        for imported in imports(path):
            if layer_of(imported) > layer_of(importer):
                arrows.append((importer, imported))
    return arrows


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports() == []


def test_the_command_line_starts_without_torch_or_pymatgen():
    """The front imports the metric functions, not the models: a `validity` run or `--help`
    does not pay for importing torch (about 2 s) or pymatgen."""
    code = ("import sys, crystal_metrics.cli; "
            "print(sorted(m for m in ('torch', 'pymatgen.core', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "crystal_metrics"
    (fake / "metrics").mkdir(parents=True)
    (fake / "metrics" / "x.py").write_text("from ..api import validity\nfrom . import kid\n"
                                           "from .. import features\n")
    (fake / "io.py").write_text("from crystal_metrics.crystal import Crystal\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert upward_imports() == [("metrics.x", "api"), ("metrics.x", "features")]


if __name__ == "__main__":
    for importer, imported in upward_imports():
        print(f"crystal_metrics/{importer.replace('.', '/')} -> {imported}")
