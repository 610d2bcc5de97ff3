"""The package's four layers import only downwards: core <- pipeline <- judgement <- report <- cli (README, Layout)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asgt_lib"
LAYERS = ("core", "pipeline", "judgement", "report")


def _layer(module: str) -> str | None:
    """The layer of a dotted module name inside asgt_lib (None for the top: __init__, cli, __main__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute name) of every import of asgt_lib in ``source`` of module ``module``, lazy imports in
    functions included; ``from X import y`` gives ``X.y``, since ``y`` may itself be a module."""
    package = module.removesuffix(".__init__") if module.endswith(".__init__") else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "asgt_lib"]


def upward_imports(layer: str, sources: dict[str, str]) -> list[str]:
    """The imports of ``sources`` (module name -> text) of ``layer`` that reach a layer above it."""
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    return [f"{module}:{line} imports {target}" for module, text in sources.items()
            for line, target in imports_of(text, module)
            if _layer(target) not in allowed and target != "asgt_lib.__version__"]


def test_every_module_lives_in_a_layer():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py"], f"a module outside core/pipeline/judgement/report: {top}"
    assert all((PACKAGE / layer / "__init__.py").is_file() for layer in LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_itself_and_the_layers_below(layer):
    sources = {_module_name(p): p.read_text() for p in sorted((PACKAGE / layer).glob("*.py"))}
    assert len(sources) > 1
    wrong = upward_imports(layer, sources)
    assert not wrong, "an upward import breaks the layering:\n" + "\n".join(wrong)


def test_the_check_catches_relative_lazy_and_absolute_upward_imports():
    probes = {
        "asgt_lib.core.probe": "def f():\n    from ..report.book import build\n",
        "asgt_lib.core.probe2": "from ..pipeline import experiment\n",
        "asgt_lib.pipeline.probe": "import asgt_lib.report.plots\nfrom . import batch\nfrom ..core import data\n",
        "asgt_lib.core.__init__": "from .train import train\nfrom asgt_lib import cli\n",
        "asgt_lib.pipeline.probe2": "def f():\n    from ..judgement.audit import audit_run\n",
    }
    wrong = upward_imports("core", {m: s for m, s in probes.items() if ".core." in m})
    assert wrong == ["asgt_lib.core.probe:2 imports asgt_lib.report.book.build",
                     "asgt_lib.core.probe2:1 imports asgt_lib.pipeline.experiment",
                     "asgt_lib.core.__init__:2 imports asgt_lib.cli"]
    assert upward_imports("pipeline", {m: s for m, s in probes.items() if ".pipeline." in m}) == [
        "asgt_lib.pipeline.probe:1 imports asgt_lib.report.plots",
        "asgt_lib.pipeline.probe2:2 imports asgt_lib.judgement.audit.audit_run"]


def test_the_pipeline_runs_experiments_and_the_judgement_judges_them():
    import pkgutil

    import asgt_lib.judgement as judgement
    import asgt_lib.pipeline as pipeline

    assert {m.name for m in pkgutil.iter_modules(pipeline.__path__)} == {"experiment", "batch", "sitting", "kernels"}
    assert {m.name for m in pkgutil.iter_modules(judgement.__path__)} >= {"audit", "sanity", "faithfulness", "claims",
                                                                          "field"}
