#!/usr/bin/env bash
# The default model's GPU run: everything in one command of at most 10 minutes on a machine with one
# GPU, torch, transformers and tokenizers, no network and no codegen-lsp install. It builds the corpus
# from that machine's own permissively licensed Python, tokenizes it with the shipped tokenizer on all
# cores, trains for about 8 minutes (bf16, fused AdamW, the schedule fitted to the time), and packs a
# checkpoint into $OUT at every checkpoint: <= 4 fp16 shards of <= 15 MB, meta.tar, train.log.
#
#   here, first:  codegen-lsp train-default --export-tokenizer .cache/device/tokenizer.json
#   there:        bash devtools/scripts/train-default-gpu.sh      (carry .cache/device)
#   here, after:  codegen-lsp train-default --from-device <returned folder> --out .cache/default-gpu \
#                     --gguf .cache/default-gpu/default-q8_0.gguf
#
# Extra arguments override the defaults below (the test suite runs it on CPU at a tiny size).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the folder that comes back}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/devtools${PYTHONPATH:+:$PYTHONPATH}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-$(nproc)}" TOKENIZERS_PARALLELISM=true
PYTHON="${PYTHON:-python3}"
UNTIL=$(( $(date +%s) + ${BUDGET_S:-540} ))  # training stops by then, whatever the corpus took: 9 of 10 minutes
"$PYTHON" - <<'PY'
import platform, torch, transformers, tokenizers
print("python", platform.python_version(), "torch", torch.__version__, "transformers", transformers.__version__,
      "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0))
PY
# 8 layers, n_embd 384, 8 heads of 48 (a multiple of mp_num = 4 in any transformers), rotary_dim 24: 26.8 M parameters, 51 MiB
# of fp16. 256 x 1024 tokens a step; the learning rate decays to 10 % by the deadline.
"$PYTHON" -m codegen_lsp_devtools.training \
    --device cuda --workers 8 --tokenizer-json .cache/device/tokenizer.json \
    --out "${TRAIN_DIR:-/tmp/codegen-lsp-default}" --export "$OUT" \
    --layers 8 --embd 384 --heads 8 --rotary-dim 24 --positions 1024 --seq-len 1023 --batch 256 \
    --lr 1.5e-3 --warmup 100 --steps 100000 --minutes 8 --until "$UNTIL" --fit-schedule \
    --checkpoint-every 250 --corpus-mb 512 --quiet "$@" 2>&1 | tee "$OUT/train.log"
