"""bench quality's scoring: exact match and line edit similarity per kind of cursor (pure)."""

from codegen_lsp_devtools.bench.quality import InfillCase, line_similarity, score_answers


def case(expected: str, kind: str = "blank-line") -> InfillCase:
    return InfillCase("f.py", 1, "    ", expected, "x = 1\n    \n", kind)


def test_line_similarity_ranks_near_misses_above_junk():
    expected = "self.n_jobs = n_jobs"
    assert line_similarity("self.n_jobs = n_jobs\n    next()", expected) == 100
    near, junk = line_similarity("self.n_jobs = jobs", expected), line_similarity("_p_is_p_p_block_p", expected)
    assert 80 < near < 100 and junk < 40
    assert line_similarity("", expected) == 0


def test_scores_keep_each_kind_apart():
    cases = [case("return a + b"), case("b", "after-space")]
    scores = score_answers(cases, ["return a + b", "c"])
    assert scores["infill_exact_match"] == 100 and scores["infill_edit_similarity"] == 100
    assert scores["after_space_exact_match"] == 0 and scores["after_space_edit_similarity"] == 0
