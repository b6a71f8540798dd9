#!/usr/bin/env bash
# Paper-scale profile: hub checkpoints, GPU batch sizes and training lengths, applied as ONE DVC
# experiment (params.yaml stays untouched; `dvc exp apply <name>` promotes it).
#   scripts/paper_profile.sh [--queue] [extra dvc exp run args, e.g. -S launcher.num_processes=4]
# Needs the checkpoints in the HF cache (or network) and, realistically, GPUs. Point the data
# parameters at the real corpora too, e.g. -S ilm.data.csv=/data/efcamdat.csv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
args=(
  -n paper-profile
  # ILM: GPT-2 small, the reference's 256-token sequences and the lab's learning rate
  -S ilm.model.name=gpt2 -S ilm.model.max_positions=1024
  -S ilm.train.max_length=256 -S ilm.eval.max_length=256 -S ilm.train.max_train_examples=null
  -S ilm.train.trainer.lr=2.5e-5 -S ilm.train.trainer.max_steps=10000 -S ilm.train.trainer.batch_size=8
  -S ilm.train.trainer.grad_accum=3 -S ilm.train.trainer.eval_steps=500 -S ilm.train.trainer.save_steps=500
  -S ilm.eval.max_documents=null -S ilm.infill_eval.limit=0
  # Ensemble: FLAN-T5-small and DistilGPT2, 3 epochs-worth of steps at the upstream's lr
  -S ensemble.models.seq2seq.model.name=google/flan-t5-small -S ensemble.models.seq2seq.training.lr=5.0e-5
  -S ensemble.models.seq2seq.training.max_steps=1500
  -S ensemble.models.causal.model.name=distilgpt2 -S ensemble.models.causal.training.lr=5.0e-5
  -S ensemble.models.causal.training.max_steps=1500
  # Weighted loss: a real causal LM with the upstream's learning rate
  -S weighted.model.name=gpt2 -S weighted.training.lr=1.0e-5 -S weighted.training.max_steps=2000
  -S weighted.model.max_positions=1024
  # Monotonic: Pythia-160m (swap for pythia-1.4b), no tiny pre-training, the upstream's per-arm lrs
  -S monotonic.model.name=EleutherAI/pythia-160m -S monotonic.pretrain.enabled=false
  -S monotonic.data.block_size=1024 -S monotonic.eval.max_length=1024
  -S monotonic.arms.baseline.training.lr=1.0e-5 -S monotonic.arms.monotonic.training.lr=5.0e-5
  -S monotonic.arms.baseline.training.max_steps=3000 -S monotonic.arms.monotonic.training.max_steps=6000
  -S monotonic.attack.uat.trigger_length=10 -S monotonic.attack.uat.candidates=100
  -S monotonic.attack.uat.restarts=3 -S monotonic.attack.uat.sweeps=50
  -S monotonic.attack.hotflip.n_texts=200 -S monotonic.attack.hotflip.max_flips=10
)
exec dvc exp run "${args[@]}" "$@"
