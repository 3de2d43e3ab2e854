"""LogitsMemo's bookkeeping (engine/logits_memo.py): a row holds until a cell at or before it is written."""

from __future__ import annotations

import numpy as np

from codegen_lsp.engine.logits_memo import LogitsMemo


def row(value: float) -> np.ndarray:
    return np.full(4, value, dtype=np.float32)


def test_a_row_is_a_copy_of_what_llama_cpp_computed():
    memo, buffer = LogitsMemo(), row(1.0)
    memo.keep(7, buffer)
    buffer[:] = 2.0  # llama.cpp reuses its logits buffer for the next decode
    assert memo.get(7).tolist() == [1.0] * 4 and memo.get(6) is None


def test_writing_a_cell_forgets_it_and_every_later_row():
    memo = LogitsMemo()
    for position in range(10, 15):
        memo.keep(position, row(position))
    memo.keep(13, row(0.5))  # a decode at 13 rewrote it: the row after it goes too
    assert [p for p in range(10, 15) if memo.get(p) is not None] == [10, 11, 12, 13]
    assert memo.get(13).tolist() == [0.5] * 4
    memo.forget_from(11)  # an evaluation from 11 on
    assert [p for p in range(10, 15) if memo.get(p) is not None] == [10]
    memo.clear()
    assert len(memo) == 0


def test_the_oldest_rows_go_past_the_limit_and_zero_keeps_none():
    memo = LogitsMemo(limit=3)
    for position in range(5):
        memo.keep(position, row(position))
    assert [p for p in range(5) if memo.get(p) is not None] == [2, 3, 4]
    off = LogitsMemo(limit=0)
    off.keep(0, row(0))
    assert off.get(0) is None
