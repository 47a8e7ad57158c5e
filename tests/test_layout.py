"""The package's layers: no module imports from a layer above its own (README "Layout").

Read from the source (``ast``), every import counts, module level or inside a function."""
import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]

#: Bottom to top. A module may import its own package and any package of a lower layer;
#: packages of one layer do not import each other unless listed in SAME_LAYER.
LAYERS = (
    ("vosjax.atomic", "vosjax.cli"),             # standard library (and absl) only
    ("vosjax.compute", "vosjax.compilation_cache", "vosjax.checkpoint", "vosjax.losses",
     "vosjax.models", "vosjax.data"),
    ("vosjax.correction",),
    ("vosjax.inference", "vosjax.training"),
    ("vosjax.evaluation",),
    ("vosjax.families",),
    ("vosjax.jobs", "vosjax.convert", "vosjax.export", "vosjax.erf"),
)
#: Allowed imports between packages of one layer (importer, imported).
SAME_LAYER = {("vosjax.compute", "vosjax.models")}


def _package(module: str) -> str | None:
    for layer in LAYERS:
        for pkg in layer:
            if module == pkg or module.startswith(pkg + "."):
                return pkg
    return None


def _layer(pkg: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if pkg in layer)


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for a in node.names:   # from vosjax import families
                yield node.lineno, f"{node.module}.{a.name}"


def _violations():
    out = []
    for path in sorted((REPO / "vosjax").rglob("*.py")):
        rel = path.relative_to(REPO)
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        if module == "vosjax":
            continue
        src = _package(module)
        assert src is not None, f"{rel}: not in any layer of tests/test_layout.py"
        for line, name in _imports(path):
            dst = _package(name)
            if dst is None or dst == src:
                continue
            if _layer(dst) > _layer(src) or (_layer(dst) == _layer(src)
                                               and (src, dst) not in SAME_LAYER):
                out.append(f"{rel}:{line}: {src} (layer {_layer(src)}) imports {name} "
                           f"(layer {_layer(dst)})")
    return out


def test_no_import_runs_up_a_layer():
    assert _violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """A control: an inference module importing vosjax.families is reported."""
    bad = tmp_path / "vosjax" / "inference" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from vosjax.families import get\n")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    assert _violations() == ["vosjax/inference/bad.py:2: vosjax.inference (layer 3) imports "
                             "vosjax.families (layer 5)",
                             "vosjax/inference/bad.py:2: vosjax.inference (layer 3) imports "
                             "vosjax.families.get (layer 5)"]
