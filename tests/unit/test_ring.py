"""Cross-file context (context/ring.py, the Chunks segment in context/prompt.py): which chunks, in what
order, how they are fitted and laid out per family."""

from __future__ import annotations

from codegen_lsp.context.prompt import Chunks, OtherFiles, Text, Token, build_segments, expand, fit_segments
from codegen_lsp.context.ring import CHUNK_LINES, MAX_CHUNKS, ChunkRing, display_path, region, usable
from codegen_lsp.gguf.meta import PromptFormat

UTILS = "import zlib\n\n\ndef compute_checksum_v2(data):\n    return zlib.crc32(data) & 0xFFFF\n"
MODELS = "class Invoice:\n    def __init__(self, amount):\n        self.amount = amount\n"
CONFIG = "TIMEOUT_SECONDS = 30\nRETRY_LIMIT = 5\n"


def ring_of(**files: str) -> ChunkRing:
    ring = ChunkRing()
    for name, text in files.items():
        ring.add(f"file:///w/{name}.py", f"{name}.py", text, 0)
    return ring


def count(text: str) -> int:  # a stand-in tokenizer: one token per 4 characters
    return -(-len(text) // 4)


def test_the_chunks_most_like_the_cursor_text_are_chosen_in_ring_order():
    ring = ring_of(utils=UTILS, models=MODELS, config=CONFIG)
    chosen = ring.select("file:///w/main.py", "payload = read()\nsum = compute_checksum_v2(payload)\n", 10_000)
    assert [c.path for c in chosen] == ["utils.py"]
    both = ring.select("file:///w/main.py", "compute_checksum_v2(invoice.amount)\nInvoice(RETRY_LIMIT)", 10_000)
    assert [c.path for c in both] == ["utils.py", "models.py", "config.py"]  # the ring's order, not the score's


def test_the_current_file_and_unrelated_files_are_left_out():
    ring = ring_of(utils=UTILS, main="x = compute_checksum_v2(b'')\n")
    assert [c.path for c in ring.select("file:///w/main.py", "compute_checksum_v2", 10_000)] == ["utils.py"]
    assert ring.select("file:///w/main.py", "def unrelated(self):\n    return None", 10_000) == []


def test_the_budget_is_spent_on_the_best_chunks():
    ring = ring_of(utils=UTILS, models=MODELS)
    chosen = ring.select("file:///w/main.py", "compute_checksum_v2 Invoice amount", len(UTILS) + 5)
    assert len(chosen) == 1


def test_an_edit_replaces_its_chunk_in_place_and_the_ring_is_bounded():
    ring = ring_of(utils=UTILS, models=MODELS)
    stamp = ring.others("file:///w/models.py")
    ring.add("file:///w/utils.py", "utils.py", UTILS + "\nVERSION = 2\n", 3)
    assert [c.path for c in ring.chunks] == ["utils.py", "models.py"]
    assert ring.others("file:///w/models.py") != stamp  # utils changed: models' prompts choose again
    assert ring.others("file:///w/utils.py") == (ring.chunks[1].serial,)  # its own edit changes nothing for it
    for n in range(MAX_CHUNKS + 3):
        ring.add(f"file:///w/f{n}.py", f"f{n}.py", f"value_{n} = {n}\n" * 3, 0)
    assert len(ring.chunks) == MAX_CHUNKS and ring.chunks[-1].path == f"f{MAX_CHUNKS + 2}.py"


def test_the_same_text_again_keeps_the_ring_as_it_is():
    ring = ring_of(utils=UTILS)
    serial = ring.chunks[0].serial
    ring.add("file:///w/utils.py", "utils.py", UTILS, 0)
    assert ring.chunks[0].serial == serial


def test_regions_are_aligned_and_bounded():
    text = "\n".join(f"line {i}" for i in range(500))
    start, body = region(text, 250)
    assert start % (CHUNK_LINES // 2) == 0 and start <= 250 < start + CHUNK_LINES
    assert body.split("\n")[0] == f"line {start}" and len(body.split("\n")) == CHUNK_LINES
    assert region(text, 251)[0] == start  # typing one line lower: the same chunk
    for line in (0, 31, 32, 63, 64, 400, 499):  # the line itself is always in its chunk
        first, chunk = region(text, line)
        assert f"line {line}" in chunk.split("\n"), line
    assert len(region("x" * 100_000, 0)[1]) <= 8192  # minified: cut


def test_binary_huge_and_blank_text_never_enter():
    assert not usable("a\x00b", 1000) and not usable("x" * 2000, 1000) and usable("x = 1\n", 1000)
    ring = ChunkRing()
    ring.add("file:///w/blank.py", "blank.py", "\n\n   \n", 0)
    assert ring.chunks == []


def test_display_path_names_the_file_and_its_folder():
    assert display_path("file:///home/me/proj/pkg/util%20s.py") == "pkg/util s.py"


# -- in the prompt ----------------------------------------------------------------------------------

OTHER = OtherFiles((("utils.py", UTILS), ("models.py", MODELS)), "main.py", "python", budget=1000)


def test_without_a_file_token_chunks_are_comment_headed_text_before_the_file():
    segments = build_segments(PromptFormat.LEFT_TO_RIGHT, "x = ", "", {}, OTHER)
    assert [type(s) for s in segments] == [Chunks, Text]
    text = "".join(s.text for s in expand(segments) if isinstance(s, Text))
    assert text == f"# utils.py\n{UTILS}\n\n# models.py\n{MODELS}\n\nx = "
    js = build_segments(PromptFormat.LEFT_TO_RIGHT, "x = ", "", {}, OtherFiles(OTHER.chunks, "a.js", "javascript", 9))
    assert expand(js)[0].text.startswith("// utils.py\n")


def test_fim_layouts_keep_chunks_inside_the_prefix_or_before_the_fim_tokens():
    ids = {"fim_pre": 1, "fim_suf": 2, "fim_mid": 3}
    plain = expand(build_segments(PromptFormat.STARCODER_FIM, "p", "s", ids, OTHER))
    assert plain[0] == Token(1) and plain[-1] == Token(3) and plain[1].text.startswith("# utils.py")
    repo = expand(build_segments(PromptFormat.QWEN_FIM, "p", "s", {**ids, "file_sep": 9}, OTHER))
    assert repo[:6] == [Token(9), Text(f"utils.py\n{UTILS}\n", "other"), Token(9), Text(f"models.py\n{MODELS}\n", "other"),
                        Token(9), Text("main.py\n", "other")]
    assert repo[6:] == [Token(1), Text("p", "prefix"), Token(2), Text("s", "suffix"), Token(3)]
    codegen2 = expand(build_segments(PromptFormat.CODEGEN2_INFILL, "p", "s", {"mask": 5, "eos": 6, "sep": 7}, OTHER))
    assert codegen2[0].text.startswith("# utils.py") and codegen2[2] == Text("p", "prefix")


def test_a_ring_bigger_than_its_budget_loses_whole_chunks_oldest_first():
    segments = build_segments(PromptFormat.LEFT_TO_RIGHT, "x = 1\n" * 10, "", {}, OTHER)
    one = count(f"# models.py\n{MODELS}\n\n")
    fitted = fit_segments([Chunks(segments[0].texts, budget=one + 1), segments[1]], 10_000, count)
    assert fitted[0].texts == segments[0].texts[1:]  # utils (oldest) dropped whole, models kept whole
    tiny_window = fit_segments(segments, 2 * one - 1, count)  # at most half the window
    assert tiny_window[0].texts == ()
    assert fit_segments(segments, 10_000, count) == segments  # room for all: untouched


def test_the_line_table_slice_is_the_region():
    """The server slices chunks through the document's line table (per keystroke); same text as region()."""
    from codegen_lsp.context.ring import region_start
    from codegen_lsp.documents.positions import LineIndex

    text = "\n".join(f"line {i}" for i in range(300))
    index = LineIndex(text)
    for line in (0, 40, 150, 299):
        start = region_start(line)
        assert (start, index.lines_text(start, start + CHUNK_LINES - 1)) == region(text, line)
    assert index.lines_text(400, 463) == ""
