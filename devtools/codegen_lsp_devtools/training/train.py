"""Train the default model: CodeGen architecture, CodeGen2 recipe (causal LM + span infilling).

Half of the sequences are plain causal LM windows of the corpus; the other half are infill
examples in CodeGen2's format `prefix <mask_1> suffix <|endoftext|><sep><mask_1> middle <eom>`,
so the model learns both completion and fill-in-the-middle. Half of the infill examples are random
token spans; the other half are shaped like the server's requests (`cursor_example`): a cursor after
a line's indentation or inside it, the middle running to a line's end, the suffix starting with its
line break, and the prompt's last token taken off as token healing takes it off. Seeded, resumable
from its last checkpoint, bounded by steps and by wall time.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..test_models import ENDOFTEXT, save_hf_checkpoint, train_tokenizer
from .corpus import Corpus

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class TrainSpec:
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 8
    rotary_dim: int = 16
    n_positions: int = 1024
    vocab: int = 16384  # BPE merges; CodeGen's whitespace tokens and sentinels come on top
    seq_len: int = 256
    batch: int = 16
    steps: int = 2000
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    infill_fraction: float = 0.5
    line_infill_fraction: float = 0.5  # of the infill examples, how many are shaped like requests (cursor_example)
    corpus_bytes: int = 24 * 2**20  # text tokenized for training (the corpus holds far more)
    tokenizer_bytes: int = 8 * 2**20
    seed: int = 0
    checkpoint_every: int = 100

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)


@dataclass(frozen=True)
class Specials:
    eos: int
    mask: int
    sep: int
    eom: int


def read_texts(corpus: Corpus, held_out: bool, limit_bytes: int) -> list[str]:
    """Corpus files in manifest order up to `limit_bytes` (stdlib first, then packages)."""
    texts, total = [], 0
    for source in corpus.split(held_out):
        try:
            text = Path(source.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text)
        total += len(text)
        if total >= limit_bytes:
            break
    return texts


def encode(tokenizer, texts: list[str], eos: int) -> np.ndarray:
    """All texts' ids, each followed by `eos`; in chunks, without offsets where tokenizers can (a GPU
    machine tokenizes hundreds of MiB on all its cores)."""
    encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    end = np.array([eos], dtype=np.int32)
    parts = [end[:0]]
    for start in range(0, len(texts), 512):
        for encoding in encode_batch(texts[start:start + 512]):
            parts += [np.asarray(encoding.ids, dtype=np.int32), end]
    return np.concatenate(parts)


def infill_layout(prefix: list[int], suffix: list[int], middle: list[int], specials: Specials) -> list[int]:
    return prefix + [specials.mask] + suffix + [specials.eos, specials.sep, specials.mask] + middle + [specials.eom]


def infill_example(window: np.ndarray, rng: np.random.Generator, specials: Specials) -> list[int]:
    """One CodeGen2 infill example cut out of `window` (token ids) at a random token span."""
    n = len(window)
    start = int(rng.integers(1, max(2, n - 1)))
    end = min(n, start + int(rng.integers(1, max(2, n // 4))))
    return infill_layout(window[:start].tolist(), window[end:].tolist(), window[start:end].tolist(), specials)


def cursor_example(text: str, rng: np.random.Generator, specials: Specials, tokenizer,
                   width: int) -> list[int] | None:
    """An infill example shaped like an inline-completion request (None if `text` has no line to use).

    The server sends the text before the cursor and the text after it (which, for a cursor on a line's
    last code, starts with that line's break), and token healing (engine/healing.py) takes the prompt's
    last token off unless it ends a line, to be spelled out again by the model. Trained on token-level
    spans only, the model never saw a prefix end in indentation or a suffix start with a line break,
    and answered such requests with junk."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    lines = [(a, b - 1) for a, b in zip(starts[1:], starts[2:]) if text[a:b - 1].strip()]  # whole lines only
    lines = [(a, b) for a, b in lines if "<|" not in text[a:b]]  # not across a file boundary
    if not lines:
        return None
    pick = int(rng.integers(0, len(lines)))
    line_start, line_end = lines[pick]
    indent = line_start + len(text[line_start:line_end]) - len(text[line_start:line_end].lstrip())
    cursor = indent if rng.random() < 0.5 else int(rng.integers(indent, line_end))
    more = int(rng.integers(0, 3)) if cursor == indent else 0  # a blank line may take 1-3 lines
    end = lines[min(len(lines) - 1, pick + more)][1]
    encode = lambda s: tokenizer.encode(s, add_special_tokens=False)
    before = encode(text[:cursor])
    prefix, healed = before.ids, ""
    if prefix and not text[:cursor].endswith("\n"):  # what token healing takes off the prompt
        prefix, healed = prefix[:-1], text[before.offsets[-1][0]:cursor]
    middle, suffix = encode(healed + text[cursor:end]).ids, encode(text[end:]).ids
    room = width - len(middle) - 5  # for prefix and suffix: the far ends go first, as the server trims them
    suffix = suffix[:max(0, min(len(suffix), room // 4, room - len(prefix)))]
    prefix = prefix[max(0, len(prefix) - (room - len(suffix))):]
    return infill_layout(prefix, suffix, middle, specials)


class Batches:
    """Seeded batches of `seq_len + 1` tokens: causal windows and infill examples, padded with eos
    (padding masked out of the loss)."""

    def __init__(self, ids: np.ndarray, spec: TrainSpec, specials: Specials, tokenizer) -> None:
        self.ids, self.spec, self.specials, self.tokenizer = ids, spec, specials, tokenizer

    def batch(self, step: int):
        import torch

        spec = self.spec
        rng = np.random.default_rng([spec.seed, step])  # a step's batch depends only on (seed, step): resumable
        width = spec.seq_len + 1
        inputs = torch.full((spec.batch, width), self.specials.eos, dtype=torch.long)
        labels = torch.full((spec.batch, width), -100, dtype=torch.long)
        for row in range(spec.batch):
            example = None
            if rng.random() < spec.infill_fraction:
                window = self._window(rng, spec.seq_len - 4)
                if rng.random() < spec.line_infill_fraction:
                    text = self.tokenizer.decode(window.tolist(), skip_special_tokens=False)
                    example = cursor_example(text, rng, self.specials, self.tokenizer, width)
                if example is None:
                    example = infill_example(window, rng, self.specials)
                example = example[:width]
            else:
                example = self._window(rng, width).tolist()
            inputs[row, : len(example)] = torch.tensor(example)
            labels[row, : len(example)] = torch.tensor(example)
        return inputs, labels

    def _window(self, rng: np.random.Generator, length: int) -> np.ndarray:
        start = int(rng.integers(0, len(self.ids) - length - 1))
        return self.ids[start:start + length]


def learning_rate(spec: TrainSpec, step: int) -> float:
    if step < spec.warmup_steps:
        return spec.learning_rate * (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return spec.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    steps_done: int
    loss: float
    seconds: float
    finished: bool


@dataclass(frozen=True)
class RunOptions:
    """How one run goes, as opposed to what it trains (`TrainSpec`)."""

    minutes: float | None = None  # stop (with a checkpoint) after this long
    fit_schedule: bool = False  # time the steps, and at each checkpoint refit `steps` so the schedule ends by the deadline
    device: str = "cpu"  # "cuda": bf16 autocast, fused AdamW, pinned batches
    workers: int = 0  # processes building batches ahead of the device
    tokenizer_gguf: Path | None = None  # train on the vocabulary inside this GGUF (the shipped one)
    tokenizer_json: Path | None = None  # ... or in this tokenizer.json (what travels to a GPU machine)
    export_dir: Path | None = None  # also pack fp16 shards here at every checkpoint (`export.pack`)
    export_extra: tuple[Path, ...] = ()  # files packed beside them (the corpus manifest)
    export_shard_mb: int = 15  # decimal MB: 15 is 14.3 MiB, under a 16 MiB limit per returned file
    until: float | None = None  # wall-clock time (time.time()) by which training stops, whatever `minutes` says
    progress: bool = True


def load_tokenizer(corpus: Corpus, spec: TrainSpec, out_dir: Path, run: RunOptions):
    """The run's tokenizer: the one a resumed run saved, else the shipped vocabulary (from a GGUF or a
    tokenizer.json), else one trained on the corpus (`spec.vocab` merges; tiny test runs)."""
    from tokenizers import Tokenizer

    for saved in (out_dir / "tokenizer.json", run.tokenizer_json):
        if saved is not None and saved.exists():
            return Tokenizer.from_file(str(saved))
    if run.tokenizer_gguf is not None:
        from .tokenizer import shipped_tokenizer

        return shipped_tokenizer(run.tokenizer_gguf)
    return train_tokenizer(read_texts(corpus, False, spec.tokenizer_bytes), spec.vocab, "codegen2")


def codegen_config(spec: TrainSpec, vocab_rows: int, eos: int):
    from transformers import CodeGenConfig

    config = CodeGenConfig(vocab_size=vocab_rows, n_positions=spec.n_positions, n_ctx=spec.n_positions,
                           n_embd=spec.n_embd, n_layer=spec.n_layer, n_head=spec.n_head, rotary_dim=spec.rotary_dim,
                           activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                           bos_token_id=eos, eos_token_id=eos, tie_word_embeddings=False)
    config._name_or_path = "codegen-lsp-default"
    return config


class _Steps:
    """Steps `first`..`last` as a map-style dataset, so a DataLoader's workers build batches ahead of
    the GPU (each batch depends only on its step: any worker may build any step)."""

    def __init__(self, batches: Batches, first: int, last: int) -> None:
        self.batches, self.first, self.last = batches, first, last

    def __len__(self) -> int:
        return max(0, self.last - self.first)

    def __getitem__(self, index: int):
        return self.batches.batch(self.first + index)


WARM_STEPS, TIMED_STEPS = 5, 20  # fit_schedule: steps not timed (allocator, kernels); fewest steps timed
RESERVE_S = 20.0  # the final checkpoint and export after the last step


def train(corpus: Corpus, spec: TrainSpec, out_dir: Path, run: RunOptions = RunOptions()) -> TrainResult:
    """Train (or resume) into `out_dir`; always leaves a loadable Hugging Face checkpoint there."""
    import contextlib

    import torch
    from tqdm import tqdm
    from transformers import CodeGenForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    cuda = run.device.startswith("cuda")
    tokenizer = load_tokenizer(corpus, spec, out_dir, run)
    specials = Specials(*(tokenizer.token_to_id(t) for t in (ENDOFTEXT, "<mask_1>", "<sep>", "<eom>")))
    ids = encode(tokenizer, read_texts(corpus, False, spec.corpus_bytes), specials.eos)

    n_rows = -(-tokenizer.get_vocab_size(with_added_tokens=True) // 64) * 64
    model = CodeGenForCausalLM(codegen_config(spec, n_rows, specials.eos)).to(run.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.01, betas=(0.9, 0.95),
                                  **({"fused": True} if cuda else {}))
    step, loss_value = 0, float("nan")
    checkpoint = out_dir / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False, map_location=run.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, loss_value = state["step"], state["loss"]

    loader = torch.utils.data.DataLoader(_Steps(Batches(ids, spec, specials, tokenizer), step, spec.steps),
                                         batch_size=None, num_workers=run.workers, pin_memory=cuda,
                                         **({"prefetch_factor": 4} if run.workers else {}))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    started = time.perf_counter()
    limits = [started + run.minutes * 60] if run.minutes else []
    if run.until is not None:
        limits.append(started + run.until - time.time())
    deadline = min(limits) if limits else None
    first, timed_from, timed_at, run_steps = step, None, step, spec.steps

    def save() -> None:
        _save(model, optimizer, step, loss_value, tokenizer, spec, out_dir, run)

    model.train()
    with tqdm(total=spec.steps, initial=step, desc="train", disable=not run.progress, unit="step") as bar:
        for inputs, labels in loader:
            if step >= spec.steps or (deadline is not None and time.perf_counter() >= deadline):
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(spec, step)
            inputs, labels = inputs.to(run.device, non_blocking=True), labels.to(run.device, non_blocking=True)
            with autocast:
                loss = model(input_ids=inputs, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if step % spec.checkpoint_every == 0 or step == spec.steps or not cuda:
                loss_value = float(loss.detach())  # a GPU sync: on CUDA only where it is reported
                bar.set_postfix(loss=f"{loss_value:.3f}")
            bar.update(1)
            if run.fit_schedule and deadline is not None and (step - first == WARM_STEPS or (
                    timed_from is not None and step - timed_at >= TIMED_STEPS and step % spec.checkpoint_every == 0)):
                # refitted at checkpoints from the recent pace, so a machine that gets busier or idler
                # mid-run still ends its schedule (the learning rate's decay) near the deadline
                if cuda:
                    torch.cuda.synchronize()
                now = time.perf_counter()
                if timed_from is not None:
                    per_step = (now - timed_from) / (step - timed_at)
                    fitted = step + int((deadline - now - RESERVE_S) / per_step)
                    spec = dataclasses.replace(spec, steps=max(step + 1, min(run_steps, fitted)))
                    bar.total = spec.steps
                timed_from, timed_at = now, step
            if step % spec.checkpoint_every == 0:
                save()
                if not run.progress:  # a log line per checkpoint where there is no progress bar
                    print(f"step {step}/{spec.steps} loss {loss_value:.3f} "
                          f"{time.perf_counter() - started:.0f} s", flush=True)
    save()
    return TrainResult(out_dir, step, loss_value, time.perf_counter() - started, step >= spec.steps)


def _save(model, optimizer, step: int, loss: float, tokenizer, spec: TrainSpec, out_dir: Path,
          run: RunOptions) -> None:
    """The resumable state, and beside it a Hugging Face checkpoint our converter reads."""
    import torch

    tmp = out_dir / (CHECKPOINT + ".partial")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "loss": loss}, tmp)
    tmp.replace(out_dir / CHECKPOINT)
    model.eval()
    save_hf_checkpoint(model, tokenizer, out_dir, "codegen2", mp_num=4)
    model.train()
    (out_dir / "train_spec.json").write_text(spec.to_json() + "\n")
    (out_dir / "train_state.json").write_text(json.dumps({"step": step, "loss": loss}) + "\n")
    if run.export_dir is not None:
        _export(model, tokenizer, out_dir, run)


def _export(model, tokenizer, out_dir: Path, run: RunOptions) -> None:
    """fp16 weights in shards of at most `run.export_shard_mb` MB with everything the converter needs,
    packed into `run.export_dir` (`export.pack`)."""
    import shutil

    import torch

    from .export import pack

    staging = out_dir / "export"
    shutil.rmtree(staging, ignore_errors=True)
    half = {name: tensor.detach().to("cpu", torch.float16) for name, tensor in model.state_dict().items()}
    save_hf_checkpoint(model, tokenizer, staging, "codegen2", mp_num=4, state_dict=half,
                       max_shard_size=f"{run.export_shard_mb}MB")
    for name in ("train_spec.json", "train_state.json"):
        shutil.copyfile(out_dir / name, staging / name)
    pack(staging, run.export_dir, list(run.export_extra))
