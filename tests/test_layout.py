"""The code's shape: only the tests import the CLI module v2s_main, and no modules import each other in a cycle."""

import ast
import glob
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def project_modules():
    """{module name: path} of the project's Python files outside tests/ (top level, speech/, bench/, scripts/)."""
    modules = {}
    for path in glob.glob(os.path.join(REPO, "**", "*.py"), recursive=True):
        rel = os.path.relpath(path, REPO)
        # runs/ and data/ hold users' outputs and downloads (a mutation run's copies of the code among them)
        if rel.startswith((".venv", "tests" + os.sep, "runs" + os.sep, "data" + os.sep)) or "/." in rel:
            continue
        name = rel[:-3].replace(os.sep, ".")
        modules[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return modules


def imports_of(path, modules):
    """Project modules a file imports anywhere (also inside functions): 'from speech import x' counts speech.x."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in modules}
    return found


def test_only_the_tests_import_the_cli():
    modules = project_modules()
    offenders = sorted(m for m, path in modules.items() if "v2s_main" in imports_of(path, modules))
    assert offenders == [], f"modules importing v2s_main (the CLI): {offenders}"


def test_no_import_cycles():
    modules = project_modules()
    graph = {m: imports_of(path, modules) - {m} for m, path in modules.items()}
    # A package's __init__ imports nothing here; 'speech' -> 'speech.x' edges come only from 'from speech import x'.
    cycles = []

    def visit(node, stack):
        for nxt in sorted(graph[node]):
            if nxt in stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack + [nxt])
        done.add(node)

    done = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from runs import train\n    import v2s_main\n")
    assert imports_of(str(path), {"runs": "", "v2s_main": ""}) == {"runs", "v2s_main"}


# The design's modules and the commands a user types; the engine they share lives in engine/.
TOP_LEVEL_MODULES = {"v2s_main", "ts_model", "ts_encoding", "ts_dataloader", "cam_v2s", "utils", "reproduce", "tsne_v2s", "swd",
                     "pretrain", "source_evaluation", "results_table"}


def test_the_top_level_holds_only_the_design_and_the_commands():
    top = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "*.py"))}
    assert top <= TOP_LEVEL_MODULES, f"modules that belong in a package: {sorted(top - TOP_LEVEL_MODULES)}"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    files = {p for p in tracked if "/" not in p and not p.startswith(".") and not p.endswith(".py")}
    assert files <= {"Makefile", "pyproject.toml", "V2S.yml", "README.md"}, f"top-level files: {sorted(files)}"


def test_the_readme_is_a_front_page_whose_links_and_figures_exist():
    import re

    text = open(os.path.join(REPO, "README.md")).read()
    assert len(text.splitlines()) <= 150, "README.md is the front page: details belong in docs/guide.md"
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    missing = [t for t in targets if not os.path.exists(os.path.join(REPO, t))]
    assert missing == [], f"README links to files that do not exist: {missing}"
    for figure in ("img/cam_gunpoint.png", "img/tsne_coffee.png", "img/swd_coffee.png"):
        assert f"({figure})" in text, f"README does not show {figure}"
    # The README's commands write into runs/ (or a folder the user names), never over tracked files.
    assert not re.search(r"--out\s+(img|results)/", text)
