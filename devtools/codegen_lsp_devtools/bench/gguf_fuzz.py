"""`bench gguf-fuzz`: gguf/header.py against hostile files. Seeded mutations of a real header (SmolLM2's
when it is in .cache/real-models, else the suite's tiny test model): byte flips, counts overwritten with
huge or edge values, truncations, splices; then files crafted to cost the most (up to --attack-mb): a tensor
with as many dimensions as the file holds, arrays nested as deep, counts past the end, the most strings, keys,
tensors and bytes the bounds allow. Every file must give a header or a HeaderError, nothing else.

The files are read in child processes (fresh interpreters: their peak RSS is their own) that report per file
the outcome and the time, and their peak RSS (VmHWM: the mapped file's pages read count too) over their
baseline after the imports; each crafted file in a child of its own, with tracemalloc's peak (the Python heap)
measured on a second, untimed read.

The builders, `apply` and `count_offsets` are shared with tests/unit/test_gguf_header*.py.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

U8, U32, STRING, ARRAY = 0, 4, 8, 9
EDGE_COUNTS = (0, 1, 2, 3, 4, 5, 255, 1 << 16, (1 << 31) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)


# -- building GGUF bytes -------------------------------------------------------------------------------

def gstr(text: bytes | str) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str, kind: int, payload: bytes) -> bytes:
    return gstr(key) + struct.pack("<I", kind) + payload


def array_of(item: int, count: int, items: bytes = b"") -> bytes:
    return struct.pack("<IQ", item, count) + items


def tensor(name: str, dims: tuple[int, ...], n_dims: int | None = None, ggml_type: int = 0, offset: int = 0) -> bytes:
    n = len(dims) if n_dims is None else n_dims
    return gstr(name) + struct.pack(f"<I{len(dims)}QIQ", n, *dims, ggml_type, offset)


def gguf(fields: Sequence[bytes] = (), tensors: Sequence[bytes] = (), n_fields: int | None = None,
         n_tensors: int | None = None) -> bytes:
    """A v3 little-endian GGUF header; the counts default to the items given."""
    counts = struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors,
                         len(fields) if n_fields is None else n_fields)
    return b"GGUF" + struct.pack("<I", 3) + counts + b"".join(fields) + b"".join(tensors)


def nested(depth: int) -> bytes:
    """One key whose value is an array of an array of ... `depth` arrays, the innermost empty."""
    return gguf([gstr("nested") + struct.pack("<I", ARRAY) + array_of(ARRAY, 1) * (depth - 1) + array_of(U8, 0)])


def strings_array(key: str, count: int, text: bytes = b"") -> bytes:
    return kv(key, ARRAY, array_of(STRING, count, gstr(text) * count))


# Crafted attacks: name → size in bytes → file bytes. Each is what a file of that size allows at most, or the
# most a bound (header.MAX_*) lets through: the slowest or largest header that can be made.
def _attacks() -> dict[str, Callable[[int], bytes]]:
    from codegen_lsp.gguf.header import MAX_HEADER, MAX_KEPT, MAX_WORK

    tokens, merges, huge = "tokenizer.ggml.tokens", "tokenizer.ggml.merges", (1 << 64) - 1
    invalid = "\U0001F600".encode() + b"\xff" * 124  # decoded: 125 characters of 4 bytes (UCS-4)
    arrays = MAX_WORK // 32 - 64

    def one(kind: int, payload: bytes) -> bytes:
        return gguf([kv("a", kind, payload)])

    return {
        # Dimensions of 2**64-1: their product grows with each (the old reader took 20 s for 100k of them).
        "n_dims filling the file": lambda size: gguf(tensors=[tensor("t", (huge,) * ((size - 64) // 8))]),
        "n_dims 2**32-1": lambda size: gguf(tensors=[tensor("t", (1,) * 4, n_dims=(1 << 32) - 1)]),
        "arrays nested as deep as the file allows": lambda size: nested(size // 12),
        "n_fields 2**64-1": lambda size: gguf(n_fields=huge),
        "n_tensors 2**64-1": lambda size: gguf(n_tensors=huge),
        "string length 2**64-1": lambda size: gguf([struct.pack("<Q", huge) + b"key" + bytes(64)]),
        "array count 2**64-1": lambda size: one(ARRAY, array_of(U32, huge)),
        "u8 array filling the file": lambda size: one(ARRAY, array_of(U8, size - 64, bytes(size - 64))),
        "u8 array of MAX_HEADER": lambda size: one(ARRAY, array_of(U8, MAX_HEADER - 64, bytes(MAX_HEADER - 64))),
        "empty strings filling the file (stepped over)": lambda size: gguf([strings_array(merges, (size - 64) // 8)]),
        "MAX_WORK empty strings (stepped over)": lambda size: gguf([strings_array(merges, MAX_WORK - 64)]),
        "MAX_WORK 15-byte strings (stepped over)":
            lambda size: gguf([strings_array(merges, MAX_WORK - 64, b"a b c d e f g h")]),
        "MAX_WORK/5 2-byte tokens (read)": lambda size: gguf([strings_array(tokens, MAX_WORK // 5 - 64, b"ab")]),
        "tokens of invalid UTF-8 up to MAX_KEPT (read)":
            lambda size: gguf([strings_array(tokens, MAX_KEPT // (80 + 4 * len(invalid)) - 64, invalid)]),
        "one ASCII string of MAX_KEPT/2": lambda size: one(STRING, gstr(b"x" * (MAX_KEPT // 2 - 4096))),
        "one string of MAX_HEADER, invalid UTF-8": lambda size: one(STRING, gstr(b"\xff" * (MAX_HEADER - 64))),
        "MAX_WORK/40 keys of u32 arrays":
            lambda size: gguf([kv(f"{i:07d}", ARRAY, array_of(U32, 1, bytes(4))) for i in range(MAX_WORK // 40)]),
        "MAX_WORK/40 tensors of 4 dimensions":
            lambda size: gguf(tensors=[tensor(f"{i:07d}", (32, 32, 32, 32)) for i in range(MAX_WORK // 40)]),
        "MAX_WORK/32 arrays in an array": lambda size: one(ARRAY, array_of(ARRAY, arrays, array_of(U8, 0) * arrays)),
    }


# -- mutating a real header --------------------------------------------------------------------------

def count_offsets(data: bytes) -> list[int]:
    """Where a well-formed header keeps its u64 counts and lengths (n_tensors, n_fields, string lengths,
    array counts, tensor dimensions): the places an overwritten count does the most harm."""
    at, offsets = 24, [8, 16]
    order = ">" if struct.unpack_from("<I", data, 4)[0] & 0xFFFF == 0 else "<"
    n_tensors, n_fields = struct.unpack_from(order + "QQ", data, 8)

    def string() -> None:
        nonlocal at
        offsets.append(at)
        at += 8 + struct.unpack_from(order + "Q", data, at)[0]

    def value(kind: int) -> None:
        nonlocal at
        sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
        if kind in sizes:
            at += sizes[kind]
        elif kind == STRING:
            string()
        else:
            item, count = struct.unpack_from(order + "IQ", data, at)
            offsets.append(at + 4)
            at += 12
            for _ in range(count):
                value(item)

    for _ in range(n_fields):
        string()
        at += 4
        value(struct.unpack_from(order + "I", data, at - 4)[0])
    for _ in range(n_tensors):
        string()
        (n_dims,) = struct.unpack_from(order + "I", data, at)
        offsets.extend(at + 4 + 8 * i for i in range(n_dims))
        at += 4 + 8 * n_dims + 12
    return offsets


def random_op(rng: random.Random, size: int, counts: list[int]) -> tuple:
    """One mutation for `apply`: a bit flipped, a count overwritten with an edge or random value, a cut,
    a splice (a slice of the header copied over, or into, another place)."""
    at = rng.randrange(max(1, size))
    kind = rng.choice(("flip", "count", "count", "cut", "splice"))
    if kind == "flip":
        return ("flip", at, rng.randrange(8))
    if kind == "count":
        value = rng.choice(EDGE_COUNTS + (rng.getrandbits(rng.choice((8, 16, 24, 32, 64))), size))
        return ("count", rng.choice(counts), value)
    if kind == "cut":
        return ("cut", at)
    return ("splice", at, rng.choice((1, 4, 8, 12, 64, 4096)), rng.randrange(max(1, size)), rng.random() < 0.5)


def apply(data: bytes, ops: list[tuple]) -> bytes:
    out = bytearray(data)
    for op in ops:
        at = min(op[1], len(out))
        if op[0] == "flip" and at < len(out):
            out[at] ^= 1 << op[2]
        elif op[0] == "count":
            out[at:at + 8] = struct.pack("<Q", op[2] % (1 << 64))
        elif op[0] == "cut":
            del out[at:]
        elif op[0] == "splice":
            piece, to = out[at:at + op[2]], min(op[3], len(out))
            if op[4]:
                out[to:to] = piece
            else:
                out[to:to + len(piece)] = piece
    return bytes(out)


def mutate(data: bytes, rng: random.Random, counts: list[int]) -> bytes:
    return apply(data, [random_op(rng, len(data), counts) for _ in range(rng.randint(1, 3))])


def real_header() -> tuple[str, bytes]:
    """SmolLM2's header when it is cached (no download here), else the tiny test model's (built if need be)."""
    from codegen_lsp.gguf.header import read_header

    smol = Path.cwd() / ".cache" / "real-models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if smol.is_file():
        path = smol
    else:
        from ..test_models import TinyModelSpec, build_test_model

        path = build_test_model(TinyModelSpec(train_steps=150)).gguf_path
    with open(path, "rb") as fh:
        return path.name, fh.read(read_header(path).data_offset)


# -- the child that reads ----------------------------------------------------------------------------

def _peak_kib() -> int:
    """VmHWM: this process's peak RSS (a fresh process's own: unlike ru_maxrss, not carried over exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)


def child(paths: list[str], heap: bool) -> dict:
    import tracemalloc

    from codegen_lsp.gguf.header import GGUFHeader, HeaderError, read_header

    import gguf.constants  # noqa: F401  (read_header's own import, out of the baseline's way)

    baseline = _peak_kib()
    outcomes, times, others, heap_peak = {"header": 0, "HeaderError": 0, "other": 0}, [], [], 0
    for path in paths:
        started = time.perf_counter()
        try:
            got = read_header(path, string_arrays=("tokenizer.ggml.tokens",))
            outcome = "header" if isinstance(got, GGUFHeader) else "other"
        except HeaderError:
            outcome = "HeaderError"
        except Exception as exc:  # noqa: BLE001  (what the bench is here to find)
            outcome = "other"
            others.append(f"{path}: {type(exc).__name__}: {exc}"[:300])
        times.append(time.perf_counter() - started)
        outcomes[outcome] += 1
        got = None
    peak = _peak_kib() - baseline
    if heap:  # a second read, traced: tracemalloc slows it down, so it is not the timed one
        tracemalloc.start()
        for path in paths:
            try:
                read_header(path, string_arrays=("tokenizer.ggml.tokens",))
            except Exception:  # noqa: BLE001
                pass
        heap_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {"outcomes": outcomes, "times": times, "others": others, "rss_growth_kib": peak,
            "heap_peak_bytes": heap_peak}


def _in_child(paths: list[Path], heap: bool) -> dict:
    code = ("import json, sys; from codegen_lsp_devtools.bench.gguf_fuzz import child; "
            "print(json.dumps(child(json.loads(sys.argv[1]), sys.argv[2] == '1')))")
    try:  # a reader that hangs is a finding too
        done = subprocess.run([sys.executable, "-c", code, json.dumps([str(p) for p in paths]), "1" if heap else "0"],
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"reading {len(paths)} files took over 10 minutes (from {paths[0]})") from None
    if done.returncode != 0:
        raise RuntimeError(f"the reading child failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


# -- the bench -----------------------------------------------------------------------------------------

def _mutants(data: bytes, n: int, seed: int) -> Iterator[bytes]:
    rng, counts = random.Random(seed), count_offsets(data)
    for _ in range(n):
        yield mutate(data, rng, counts)


def run_gguf_fuzz(n: int = 10_000, seed: int = 0, attack_mb: int = 100, batch: int = 500) -> dict:
    source, data = real_header()
    report: dict = {"source": source, "header_bytes": len(data), "seed": seed, "mutants": n, "attacks": [],
                    "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    totals, times, others, peaks = {"header": 0, "HeaderError": 0, "other": 0}, [], [], []
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="gguf-fuzz-", dir=shm if shm.is_dir() else None) as tmp:
        mutants = _mutants(data, n, seed)
        for first in range(0, n, batch):  # batches: the files of one child are on disk at once
            paths = []
            for i in range(first, min(n, first + batch)):
                paths.append(Path(tmp) / f"m{i}.gguf")
                paths[-1].write_bytes(next(mutants))
            got = _in_child(paths, heap=False)
            for key, count in got["outcomes"].items():
                totals[key] += count
            times += got["times"]
            others += got["others"]
            peaks.append(got["rss_growth_kib"])
            for path in paths:
                path.unlink()
        report["mutant_outcomes"], report["mutant_others"] = totals, others[:20]
        report["mutant_ms_max"], report["mutant_ms_p99"] = _ms(max(times)), _ms(_p99(times))
        report["mutant_rss_growth_mib_max"] = max(peaks) / 1024
        for name, build in _attacks().items():
            path = Path(tmp) / "attack.gguf"
            path.write_bytes(build(attack_mb << 20))
            size = path.stat().st_size
            got = _in_child([path], heap=True)
            outcome = next(k for k, v in got["outcomes"].items() if v)
            report["attacks"].append({"name": name, "bytes": size, "outcome": outcome, "ms": _ms(got["times"][0]),
                                      "rss_growth_mib": got["rss_growth_kib"] / 1024,
                                      "heap_peak_mib": got["heap_peak_bytes"] / (1 << 20),
                                      "others": got["others"]})
            path.unlink()
    report["others"] = len(others) + sum(a["outcome"] == "other" for a in report["attacks"])
    return report


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def print_gguf_fuzz(report: dict) -> None:
    o = report["mutant_outcomes"]
    if report["load_average"] is not None:
        print(f"load average at the start: {report['load_average']:.2f}")
    print(f"{report['mutants']} mutants of {report['source']}'s header ({report['header_bytes']} bytes, seed "
          f"{report['seed']}): {o['header']} headers, {o['HeaderError']} HeaderError, {o['other']} other")
    print(f"  per file: max {report['mutant_ms_max']:.1f} ms, p99 {report['mutant_ms_p99']:.1f} ms; "
          f"peak RSS growth {report['mutant_rss_growth_mib_max']:.1f} MiB")
    for line in report["mutant_others"]:
        print(f"  OTHER {line}")
    print("crafted files:")
    for a in report["attacks"]:
        print(f"  {a['name']:<46} {a['bytes'] / (1 << 20):7.1f} MiB  {a['outcome']:<11} {a['ms']:7.1f} ms  "
              f"RSS +{a['rss_growth_mib']:.1f} MiB  heap {a['heap_peak_mib']:.1f} MiB")
        for line in a["others"]:
            print(f"    OTHER {line}")
    attacks = report["attacks"]
    print(f"crafted: max {max(a['ms'] for a in attacks):.1f} ms, peak RSS growth "
          f"{max(a['rss_growth_mib'] for a in attacks):.1f} MiB, heap {max(a['heap_peak_mib'] for a in attacks):.1f} "
          "MiB")
    print(f"other exceptions: {report['others']}")
