"""Resuming a killed training run, and only the same run.

Checkpoint dirs are ``persist: true`` DVC outs: they survive ``dvc repro`` after a crash, and also a
change of params or data. :func:`checkpoint_to_resume` keeps them only when a fingerprint of the
resolved params **and the content of every training input** matches the one stamped when they were
written; otherwise it wipes them and the run starts over. :class:`StrictResumeMixin` makes the
resumed weights load completely or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from lmlab.artifacts import remove_path
from lmlab.stage import is_main_process

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_STAMP",
    "run_fingerprint",
    "checkpoint_to_resume",
    "find_resume_checkpoint",
    "StrictResumeMixin",
    "rename_legacy_keys",
]


def find_resume_checkpoint(checkpoint_dir: str | Path) -> str | None:
    """The last complete ``checkpoint-N`` under ``checkpoint_dir`` (a persisted DVC out), if any."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    last = get_last_checkpoint(str(checkpoint_dir))
    if last and not (Path(last) / "trainer_state.json").exists():
        logger.warning("ignoring incomplete checkpoint %s", last)
        return None
    if last and _is_final(Path(last)):
        # Resuming at global_step == max_steps makes the Trainer run one extra optimiser step
        # whenever max_steps is not a multiple of the steps per epoch (it re-enters the last
        # epoch before checking max_steps), so `dvc repro -f` would change a finished model.
        # Training again from the start gives exactly the uninterrupted run's model instead.
        logger.info("%s is the final checkpoint of a finished run: training again from the start", last)
        if int(os.environ.get("RANK", "0")) == 0:
            for stale in checkpoint_dir.glob("checkpoint-*"):
                remove_path(stale)
        return None
    if last:
        logger.info("resuming from %s", last)
    return last


def _is_final(checkpoint: Path) -> bool:
    """True when the checkpoint's ``trainer_state.json`` says its run reached ``max_steps``."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        return 0 < int(state.get("max_steps") or 0) <= int(state.get("global_step") or 0)
    except (OSError, ValueError, TypeError):
        return False


CHECKPOINT_STAMP = "lmlab_fingerprint.json"


def run_fingerprint(params: Any, inputs: Sequence[str | Path] = ()) -> str:
    """A digest of what a training run depends on: its resolved params and the bytes of its inputs.

    ``inputs`` are files or directories (every file below, by relative path and content, in sorted
    order): training and validation data, tokenizer dirs, base-model dirs. A missing input is part of
    the digest too (as missing), so a run whose input appears later does not resume. Files are read
    in 1 MiB chunks, so a multi-GB base model is hashed without holding it in memory.
    """
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in map(Path, inputs):
        digest.update(f"\0input:{path.name}\0".encode())
        if not path.exists():
            digest.update(b"<missing>")
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(f"\0{file.relative_to(path) if path.is_dir() else file.name}\0".encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def checkpoint_to_resume(
    checkpoint_dir: str | Path, fingerprint: str, args: TrainingArguments | None = None
) -> str | None:
    """The checkpoint to resume from, if the persisted dir was written for the same run.

    Checkpoint dirs are ``persist: true`` DVC outs, so they survive a params change
    (``dvc exp run -S ...``); resuming them would silently mix two runs. The dir carries a
    fingerprint stamp (:func:`run_fingerprint`); on a mismatch the main process deletes it and
    training starts over. With ``args``, other ranks wait until the main process is done.
    """
    checkpoint_dir = Path(checkpoint_dir)
    stamp = checkpoint_dir / CHECKPOINT_STAMP

    def reset() -> None:
        old = json.loads(stamp.read_text()).get("fingerprint") if stamp.exists() else None
        if checkpoint_dir.exists() and old != fingerprint:
            if any(checkpoint_dir.iterdir()):
                logger.warning("checkpoints in %s were written for other params/data: starting over", checkpoint_dir)
            remove_path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")

    if args is None:
        if is_main_process():
            reset()
    else:
        with args.main_process_first(desc="checkpoint fingerprint"):
            if args.process_index == 0:
                reset()
    return find_resume_checkpoint(checkpoint_dir)


class StrictResumeMixin:
    """Resume model weights under their in-memory names, and never resume half-loaded.

    transformers 5 saves some models under legacy key names (GPT-NeoX ``lm_head`` -> ``embed_out``),
    but ``Trainer._load_from_checkpoint`` loads ``model.safetensors`` with a non-strict
    ``load_state_dict``: renamed weights would silently stay at their fresh initialisation. This
    applies the model's registered renamings (``WeightRenaming``) and raises if a weight that does
    not share storage with a loaded one (tied embeddings do) is still missing. FSDP and DeepSpeed
    checkpoints keep the Trainer's own loader.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        model = model if model is not None else self.model  # type: ignore[attr-defined]
        path = Path(resume_from_checkpoint) / "model.safetensors"
        if not path.exists() or self.is_fsdp_enabled or self.is_deepspeed_enabled:  # type: ignore[attr-defined]
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]
        from safetensors.torch import load_file

        state = rename_legacy_keys(load_file(str(path), device="cpu"), model)
        result = model.load_state_dict(state, strict=False)
        current = model.state_dict()
        loaded = {current[k].data_ptr() for k in state if k in current}
        missing = [k for k in result.missing_keys if current[k].data_ptr() not in loaded]
        if missing:
            raise RuntimeError(f"checkpoint {resume_from_checkpoint} lacks weights {missing[:5]}; "
                               "delete the checkpoint dir to train from the start")
        logger.info("loaded checkpoint weights from %s", resume_from_checkpoint)


def rename_legacy_keys(state: dict[str, Any], model: Any) -> dict[str, Any]:
    """Map saved key names the model does not know onto its own, by its registered renamings."""
    from transformers.conversion_mapping import extract_weight_conversions_for_model
    from transformers.core_model_loading import WeightRenaming, apply_renamings

    expected = set(model.state_dict())
    renamings = [r for r in extract_weight_conversions_for_model(model) or [] if isinstance(r, WeightRenaming)]
    for key in [k for k in state if k not in expected]:
        renamed = apply_renamings(key, renamings)
        if renamed != key and renamed in expected:
            state[renamed] = state.pop(key)
    return state
