"""scripts/mutation_score.py: the pieces that decide what is run and how it is counted (mutmut itself is not run)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import mutation_score  # noqa: E402


def test_only_keras_constructors_are_kept_from_mutation(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("class A(L.Layer):\n    def __init__(self, x, **kwargs):\n        pass\n\n"
                    "    def call(self, x):\n        return x\n\n"
                    "class B:\n    def __init__(self, x):\n        pass\n\n"
                    "class C(keras.callbacks.Callback):\n    def __init__(self):\n        pass\n")
    mutation_score.mark_keras_constructors(str(path))
    marked = [i for i, line in enumerate(path.read_text().split("\n")) if "no mutate" in line]
    assert marked == [1, 12]  # A's and C's constructors; not A.call, not the plain class B


def test_the_sample_is_the_same_draw_whatever_the_order_of_the_names():
    names = [f"m.x_f__mutmut_{i}" for i in range(50)]
    first = mutation_score.sample(names, 5, seed=0)
    assert first == mutation_score.sample(list(reversed(names)), 5, seed=0)
    assert first != mutation_score.sample(names, 5, seed=1) and len(set(first)) == 5
    assert mutation_score.sample(names[:3], 5, seed=0) == sorted(names[:3])
    assert set(first) < set(mutation_score.sample(names, 10, seed=0))  # widening reuses what was run


def test_recorded_verdicts_fill_a_fresh_cache_and_are_not_run_again(tmp_path):
    import json

    (tmp_path / "mutants").mkdir()
    meta = tmp_path / "mutants" / "utils.py.meta"
    meta.write_text(json.dumps({"exit_code_by_key": {"a": 1, "b": None, "c": None, "t": -24},
                                "durations_by_key": {}}))
    chosen = {"utils.py": ["a", "b", "t"]}
    mutation_score.record(mutation_score.results(str(tmp_path)), chosen, str(tmp_path / "v.json"))
    # only what was decided: not the mutant not run, nor the one stopped at its CPU limit
    assert json.loads((tmp_path / "v.json").read_text()) == {"utils.py": {"a": 1}}
    meta.write_text(json.dumps({"exit_code_by_key": {"a": None, "b": None, "c": 0}, "durations_by_key": {}}))
    mutation_score.restore(str(tmp_path), str(tmp_path / "v.json"))
    assert json.loads(meta.read_text())["exit_code_by_key"] == {"a": 1, "b": None, "c": 0}


def test_the_report_leaves_timeouts_undecided_and_counts_unreached_mutants_as_missed():
    codes = {"utils.py": {"a": 1, "b": 0, "c": 33, "d": 36, "e": None}}
    text = mutation_score.report("0123456789abc", codes, {"utils.py": ["a", "b", "c", "d", "e"]}, 5, 0)
    row = next(line for line in text.splitlines() if line.startswith("| utils.py"))
    # 1 killed of 3 decided (killed, survived, no tests); the timeout and the mutant not run yet are left out
    assert row.rstrip(" |").split(" | ")[2:9] == ["5", "1", "1", "1", "1", "1", "33% (6-79)"]
    assert "- `b` (survived)" in text and "- `c` (no tests)" in text and "`a`" not in text


def test_a_paired_sample_keeps_only_functions_whose_source_is_the_same_in_both_revisions():
    codes = {"engine/runs.py": {"engine.runs.x_a__mutmut_1": None, "engine.runs.x_a__mutmut_2": None,
                                "engine.runs.xǁRunConfigǁb__mutmut_1": None, "engine.runs.x_c__mutmut_1": None}}
    ours = {"engine/runs.py": {"x_a": "1", "xǁRunConfigǁb": "2", "x_c": "3"}}
    theirs = {"engine/runs.py": {"x_a": "1", "xǁRunConfigǁb": "9"}}  # b changed, c is new
    assert mutation_score.unchanged(codes, ours, theirs) == {
        "engine/runs.py": ["engine.runs.x_a__mutmut_1", "engine.runs.x_a__mutmut_2"]}
