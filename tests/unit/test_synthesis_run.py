"""The synthesis loop on plain values (no server): a scripted engine, `is_current` and `report`,
with offsets in code points end to end (multi-byte characters before a comment)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from codegen_lsp.documents.positions import PositionEncoding
from codegen_lsp.documents.store import DocumentStore
from codegen_lsp.engine.jobs import GenerationJob, GenerationResult
from codegen_lsp.synthesis.run import Synthesis, SynthesisOptions
from codegen_lsp.synthesis.turns import plan_turns
from support.imports import lsp_modules_loaded_by

URI = "file:///unicode.py"
# 'é' is 2 UTF-8 bytes, '😀' 4 (and 2 UTF-16 units): byte, code-point and UTF-16 offsets all differ.
TEXT = 's = "é😀"\n# Print s.\n\n# Double s.\nt = s * 2\n'


class Engine:
    def __init__(self, answers: list[str]) -> None:
        self.answers, self.prompts = answers, []

    def submit(self, job: GenerationJob) -> Future:
        self.prompts.append(job.segments[0].text)
        future: Future = Future()
        future.set_result(GenerationResult(self.answers.pop(0), "end", generated_tokens=3))
        return future


def _doc(text: str = TEXT):
    return DocumentStore(PositionEncoding.UTF16).open(URI, "python", 1, text)


def _plan(doc, start: int = 0, end: int = 0):
    return plan_turns(doc.tree, doc.source_bytes, doc.language, start, end)


def test_turn_offsets_are_code_points():
    doc = _doc()
    first, second = _plan(doc).turns
    assert doc.text[first.comment_start:].startswith("# Print s.")
    assert doc.text[first.code_start:].startswith("\n# Double s.")
    assert doc.text[second.code_start:second.code_end] == "t = s * 2"
    # a selection given in code points picks the right lines
    at = doc.text.index("# Double")
    (turn,) = _plan(doc, at, len(doc.text)).turns
    assert turn.comment == "Double s." and turn.existing_code == "t = s * 2"


def test_insertions_land_after_multibyte_characters():
    doc = _doc()
    engine, logs = Engine(["print(s)\n"]), []
    synthesis = Synthesis(doc, _plan(doc), SynthesisOptions(), None, engine, lambda: True, logs.append)
    result = asyncio.run(synthesis.run())
    assert [t.status for t in result.turns] == ["inserted"]
    assert engine.prompts == ['s = "é😀"\n# Print s.\n']
    (ins,) = result.insertions
    assert doc.text[:ins.start] + ins.text + doc.text[ins.end:] == \
        's = "é😀"\n# Print s.\nprint(s)\n\n# Double s.\nt = s * 2\n'
    assert len(logs) == 1 and "synthesis turn 1/1" in logs[0] and "inserted" in logs[0]


def test_regenerate_replaces_existing_code_after_multibyte_characters():
    doc = _doc()
    engine = Engine(["print(s)\n", "t = s + s\n"])
    options = SynthesisOptions(regenerate=True)
    result = asyncio.run(Synthesis(doc, _plan(doc), options, None, engine, lambda: True, lambda _: None).run())
    assert [t.status for t in result.turns] == ["inserted", "inserted"]
    assert engine.prompts[1] == 's = "é😀"\n# Print s.\nprint(s)\n\n# Double s.\n'
    text = doc.text
    for ins in reversed(result.insertions):
        text = text[:ins.start] + ins.text + text[ins.end:]
    assert text == 's = "é😀"\n# Print s.\nprint(s)\n\n# Double s.\nt = s + s\n'


def test_a_changed_document_stops_before_the_next_turn():
    doc = _doc()
    result = asyncio.run(Synthesis(doc, _plan(doc), SynthesisOptions(), None, Engine([]), lambda: False,
                                   lambda _: None).run())
    assert result.stopped == "document changed" and not result.insertions


def test_synthesis_knows_nothing_of_lsp():
    loaded = lsp_modules_loaded_by("codegen_lsp.synthesis.run", "codegen_lsp.synthesis.turns",
                                   "codegen_lsp.synthesis.truncate")
    assert loaded == ([], False), loaded
