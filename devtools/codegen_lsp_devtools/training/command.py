"""`train-default`: its options and what it runs.

Importable without the runtime's dependencies, because a GPU machine has torch, transformers and
tokenizers but not pygls or llama.cpp: there the same command runs as
`python3 -m codegen_lsp_devtools.training` (devtools/scripts/train-default-gpu.sh). Converting to GGUF
(`--gguf`, `--from-device`) needs the runtime and happens on the machine that serves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .train import RunOptions, TrainSpec


class TrainCommandError(Exception):
    """A user error: printed as one line, exit status 1."""


def add_arguments(p: argparse.ArgumentParser, outtypes: tuple[str, ...] = ("q8_0",)) -> None:
    d = TrainSpec()
    p.add_argument("--out", default=".cache/default-model", help="checkpoint folder (resumed if present)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--minutes", type=float, default=None, help="stop (with a checkpoint) after this long")
    p.add_argument("--until", type=float, default=None, metavar="EPOCH_SECONDS",
                   help="stop training by this wall-clock time (a GPU machine's command limit)")
    p.add_argument("--fit-schedule", action=argparse.BooleanOptionalAction, default=False,
                   help="time the first steps, then end the learning-rate schedule inside --minutes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--layers", type=int, default=d.n_layer)
    p.add_argument("--embd", type=int, default=d.n_embd)
    p.add_argument("--heads", type=int, default=d.n_head)
    p.add_argument("--rotary-dim", type=int, default=d.rotary_dim)
    p.add_argument("--positions", type=int, default=d.n_positions, help="context length the model is built for")
    p.add_argument("--vocab", type=int, default=d.vocab, help="BPE merges, with --train-tokenizer")
    p.add_argument("--seq-len", type=int, default=d.seq_len)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--warmup", type=int, default=d.warmup_steps, help="warm-up steps")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps")
    p.add_argument("--corpus-mb", type=int, default=d.corpus_bytes // 2**20,
                   help="MiB of source text tokenized for training")
    p.add_argument("--tokenizer-from", default=None,
                   help="GGUF whose vocabulary to train on (default: the embedded default model's)")
    p.add_argument("--tokenizer-json", default=None, help="... or this tokenizer.json (see --export-tokenizer)")
    p.add_argument("--train-tokenizer", action="store_true",
                   help="train a new BPE tokenizer of --vocab merges instead of the shipped one")
    p.add_argument("--export-tokenizer", default=None, metavar="JSON",
                   help="only write the shipped tokenizer to this tokenizer.json (it travels to a GPU machine)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, or cuda (bf16 autocast, fused AdamW)")
    p.add_argument("--workers", type=int, default=0, help="processes that build batches ahead of the device")
    p.add_argument("--export", default=None, metavar="DIR",
                   help="also pack fp16 weights in <=15 MB shards and one meta.tar here at every checkpoint")
    p.add_argument("--export-shard-mb", type=int, default=RunOptions.export_shard_mb, help="largest shard, MB")
    p.add_argument("--from-device", default=None, metavar="DIR",
                   help="do not train: check and unpack what a GPU run packed (--export) into --out")
    p.add_argument("--gguf", default=None, help="convert the checkpoint to this .gguf")
    p.add_argument("--outtype", default="q8_0", choices=outtypes)
    p.add_argument("--quiet", action="store_true")


def _spec(args: argparse.Namespace) -> TrainSpec:
    if args.seq_len + 1 > args.positions:  # a window is seq_len + 1 tokens, all fed to the model
        raise TrainCommandError(f"--seq-len {args.seq_len} needs --positions of at least {args.seq_len + 1}")
    return TrainSpec(n_layer=args.layers, n_embd=args.embd, n_head=args.heads, rotary_dim=args.rotary_dim,
                     n_positions=args.positions, vocab=args.vocab, seq_len=args.seq_len, batch=args.batch,
                     steps=args.steps, learning_rate=args.lr, warmup_steps=args.warmup, seed=args.seed,
                     corpus_bytes=args.corpus_mb * 2**20, checkpoint_every=args.checkpoint_every)


def _shipped_gguf(args: argparse.Namespace) -> Path:
    if args.tokenizer_from:
        path = Path(args.tokenizer_from)
    else:
        from codegen_lsp.models.resolve import default_model_path

        path = default_model_path()
    if path is None or not path.is_file():
        raise TrainCommandError(f"no GGUF to read the shipped tokenizer from ({path}); "
                                "pass --tokenizer-from, --tokenizer-json or --train-tokenizer")
    return path


def _check_device(device: str) -> None:
    """Fail in seconds, not after building the corpus, where the GPU machine lacks what we need."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainCommandError(f"--device {device}: torch {torch.__version__} sees no CUDA device")
    try:
        from transformers import CodeGenForCausalLM  # noqa: F401
    except ImportError as exc:
        raise TrainCommandError(f"this transformers has no CodeGenForCausalLM ({exc})") from None


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.export_tokenizer:
        from .tokenizer import shipped_tokenizer

        Path(args.export_tokenizer).parent.mkdir(parents=True, exist_ok=True)
        shipped_tokenizer(_shipped_gguf(args)).save(args.export_tokenizer)
        print(f"wrote {args.export_tokenizer}")
        return 0
    if args.from_device:
        from .export import ExportError, unpack

        try:
            state = unpack(Path(args.from_device), out)
        except ExportError as exc:
            raise TrainCommandError(str(exc)) from None
        print(f"unpacked step {state.get('step')} (loss {state.get('loss')}) into {out}")
    else:
        _train(args, out)
    if args.gguf:
        from codegen_lsp.convert import convert_checkpoint

        report = convert_checkpoint(out, Path(args.gguf), args.outtype, progress=not args.quiet)
        print(f"wrote {report.out} ({args.outtype}, {report.bytes_written / 2**20:.1f} MiB)")
    return 0


def _train(args: argparse.Namespace, out: Path) -> None:
    import torch

    from .corpus import build_corpus
    from .train import train

    _check_device(args.device)
    spec = _spec(args)
    tokenizer_json = Path(args.tokenizer_json) if args.tokenizer_json else None
    if tokenizer_json is not None and not tokenizer_json.is_file():
        raise TrainCommandError(f"{tokenizer_json}: no such tokenizer.json")
    tokenizer_gguf = None if args.train_tokenizer or tokenizer_json else _shipped_gguf(args)
    corpus = build_corpus()
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "corpus_manifest.json"
    corpus.write_manifest(manifest)
    print(f"torch {torch.__version__} on {args.device}; corpus: {len(corpus.files)} files from "
          f"{len(corpus.packages)} packages ({len(corpus.split(True))} held out); manifest: {manifest}", flush=True)
    options = RunOptions(minutes=args.minutes, until=args.until, fit_schedule=args.fit_schedule, device=args.device,
                         workers=args.workers, tokenizer_gguf=tokenizer_gguf, tokenizer_json=tokenizer_json,
                         export_dir=Path(args.export) if args.export else None, export_extra=(manifest,),
                         export_shard_mb=args.export_shard_mb,
                         progress=not args.quiet)
    result = train(corpus, spec, out, options)
    print(f"{'finished' if result.finished else 'stopped'} at step {result.steps_done}, loss {result.loss:.3f}, "
          f"{result.seconds / 60:.1f} min this run; checkpoint: {out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen_lsp_devtools.training",
                                     description="train the default model (the `train-default` command)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TrainCommandError as exc:
        parser.exit(1, f"error: {exc}\n")
