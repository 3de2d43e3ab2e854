"""Train the default model: CodeGen architecture, CodeGen2 recipe (causal LM + span infilling).

Half of the sequences are plain causal LM windows of the corpus; the other half are infill
examples in CodeGen2's format `prefix <mask_1> suffix <|endoftext|><sep><mask_1> middle <eom>`,
the middle being whole lines as often as a random span, so the model learns both completion and
fill-in-the-middle. Seeded, resumable from its last checkpoint, bounded by steps and by wall time.
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
    line_infill_fraction: float = 0.5  # of the infill examples, how many hide whole lines
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
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(texts):
        ids.extend(encoding.ids)
        ids.append(eos)
    return np.asarray(ids, dtype=np.int32)


def infill_example(window: np.ndarray, rng: np.random.Generator, specials: Specials, newline_ids: set[int],
                   whole_lines: bool) -> list[int]:
    """One CodeGen2 infill example cut out of `window` (token ids)."""
    n = len(window)
    if whole_lines:
        breaks = [i + 1 for i, t in enumerate(window[:-1]) if int(t) in newline_ids]
        if len(breaks) >= 2:
            first = int(rng.integers(0, len(breaks) - 1))
            last = min(len(breaks) - 1, first + int(rng.integers(1, 4)))
            start, end = breaks[first], breaks[last]
        else:
            whole_lines = False
    if not whole_lines:
        start = int(rng.integers(1, max(2, n - 1)))
        end = min(n, start + int(rng.integers(1, max(2, n // 4))))
    prefix, middle, suffix = window[:start].tolist(), window[start:end].tolist(), window[end:].tolist()
    return prefix + [specials.mask] + suffix + [specials.eos, specials.sep, specials.mask] + middle + [specials.eom]


class Batches:
    """Seeded batches of `seq_len + 1` tokens: causal windows and infill examples, padded with eos
    (padding masked out of the loss)."""

    def __init__(self, ids: np.ndarray, spec: TrainSpec, specials: Specials, newline_ids: set[int]) -> None:
        self.ids, self.spec, self.specials, self.newline_ids = ids, spec, specials, newline_ids

    def batch(self, step: int):
        import torch

        spec = self.spec
        rng = np.random.default_rng([spec.seed, step])  # a step's batch depends only on (seed, step): resumable
        width = spec.seq_len + 1
        inputs = torch.full((spec.batch, width), self.specials.eos, dtype=torch.long)
        labels = torch.full((spec.batch, width), -100, dtype=torch.long)
        for row in range(spec.batch):
            if rng.random() < spec.infill_fraction:
                window = self._window(rng, spec.seq_len - 4)
                whole_lines = rng.random() < spec.line_infill_fraction
                example = infill_example(window, rng, self.specials, self.newline_ids, whole_lines)[:width]
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


def train(corpus: Corpus, spec: TrainSpec, out_dir: Path, minutes: float | None = None,
          progress: bool = True) -> TrainResult:
    """Train (or resume) into `out_dir`; always leaves a loadable Hugging Face checkpoint there."""
    import torch
    from tqdm import tqdm
    from transformers import CodeGenConfig, CodeGenForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(spec.seed)
    tokenizer_path = out_dir / "tokenizer.json"
    if tokenizer_path.exists():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    else:
        tokenizer = train_tokenizer(read_texts(corpus, False, spec.tokenizer_bytes), spec.vocab, "codegen2")
    specials = Specials(*(tokenizer.token_to_id(t) for t in (ENDOFTEXT, "<mask_1>", "<sep>", "<eom>")))
    newline_ids = {i for token, i in tokenizer.get_vocab().items() if token.endswith("Ċ")}  # byte-level "\n"
    ids = encode(tokenizer, read_texts(corpus, False, spec.corpus_bytes), specials.eos)

    n_rows = -(-tokenizer.get_vocab_size(with_added_tokens=True) // 64) * 64
    config = CodeGenConfig(vocab_size=n_rows, n_positions=spec.n_positions, n_ctx=spec.n_positions,
                           n_embd=spec.n_embd, n_layer=spec.n_layer, n_head=spec.n_head, rotary_dim=spec.rotary_dim,
                           activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                           bos_token_id=specials.eos, eos_token_id=specials.eos, tie_word_embeddings=False)
    config._name_or_path = "codegen-lsp-default"
    model = CodeGenForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    step, loss_value = 0, float("nan")
    checkpoint = out_dir / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, loss_value = state["step"], state["loss"]

    batches = Batches(ids, spec, specials, newline_ids)
    started = time.perf_counter()
    deadline = started + minutes * 60 if minutes else None
    model.train()
    with tqdm(total=spec.steps, initial=step, desc="train", disable=not progress, unit="step") as bar:
        while step < spec.steps and (deadline is None or time.perf_counter() < deadline):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(spec, step)
            inputs, labels = batches.batch(step)
            loss = model(input_ids=inputs, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step, loss_value = step + 1, float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}")
            if step % spec.checkpoint_every == 0:
                _save(model, optimizer, step, loss_value, tokenizer, spec, out_dir)
    _save(model, optimizer, step, loss_value, tokenizer, spec, out_dir)
    return TrainResult(out_dir, step, loss_value, time.perf_counter() - started, step >= spec.steps)


def _save(model, optimizer, step: int, loss: float, tokenizer, spec: TrainSpec, out_dir: Path) -> None:
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
