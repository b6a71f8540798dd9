"""Launching a training stage on several processes and nodes: an accelerate config from params, torchrun underneath.

``scripts/launch stages/<stage>.py ...`` (every training stage's cmd in dvc.yaml) runs a plain
interpreter for one process and ``python -m lmlab.launch`` otherwise. This module:

* reads the **world** from the environment, never from the stage's tracked params: processes per node
  from ``LMLAB_NUM_PROCESSES`` (default: ``SLURM_GPUS_ON_NODE`` inside a SLURM job, else 1), nodes
  from ``LMLAB_NUM_NODES`` or ``SLURM_NNODES``, this node's rank from ``SLURM_NODEID`` (``SLURM_PROCID``), the
  rendezvous host from the first host of ``SLURM_JOB_NODELIST`` (``scontrol show hostnames``) and its
  port from ``LMLAB_MASTER_PORT`` or ``launcher.port``. The world size changes how a step is computed,
  not what it computes: the params' global batch (``batch_size x grad_accum``) is kept by
  :func:`lmlab.training.accumulation_for`, so a model trained on 1 or 8 GPUs is the same DVC stage.
* writes an **accelerate config** from the ``launcher:`` section (``strategy``: ``ddp``, ``fsdp`` or
  ``deepspeed`` ZeRO) and launches it the way ``accelerate launch --config_file`` does: accelerate
  turns the config into the environment the Trainer's ``Accelerator`` reads, torch's elastic runner
  (torchrun) starts the processes, DeepSpeed's own launcher runs DeepSpeed.
* passes a stage's **input error through**: a worker that exits 2 (bad params or inputs, its
  one-paragraph message already printed) makes the launch exit 2, without torchrun's
  ``ChildFailedError`` traceback; another failure exits with the worker's code and one summary line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from lmlab.errors import InputError, LmlabError

__all__ = ["LauncherParams", "World", "world_from_env", "first_host", "accelerate_config", "launch_command",
           "load_launcher_params", "main"]

logger = logging.getLogger("lmlab.launch")

EXIT_INPUT_ERROR = 2
PROCESSES_ENV = "LMLAB_NUM_PROCESSES"
NODES_ENV = "LMLAB_NUM_NODES"


@dataclass(frozen=True)
class LauncherParams:
    """``launcher:`` of params.yaml: how the processes share the model (not a stage dep: see module doc)."""

    strategy: Literal["ddp", "fsdp", "deepspeed"] = "ddp"
    zero_stage: int = 2  # DeepSpeed ZeRO stage: 1 optimizer states, 2 + gradients, 3 + weights sharded
    fsdp_sharding: Literal["FULL_SHARD", "SHARD_GRAD_OP", "HYBRID_SHARD", "NO_SHARD"] = "FULL_SHARD"
    offload: bool = False  # FSDP: parameters to CPU; ZeRO: optimizer states (and stage-3 weights) to CPU
    port: int = 29500

    def __post_init__(self) -> None:
        if self.zero_stage not in (1, 2, 3):
            raise ValueError(f"zero_stage: must be 1, 2 or 3, got {self.zero_stage}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port: must be a TCP port, got {self.port}")


@dataclass(frozen=True)
class World:
    """Processes of a launch: ``processes_per_node`` on each of ``nodes`` (this one is ``node_rank``)."""

    processes_per_node: int = 1
    nodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def size(self) -> int:
        return self.processes_per_node * self.nodes


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise InputError(f"{name} must be a positive integer, got '{raw}'.",
                         hint=f"unset it for 1, or e.g. export {name}=4")
    return int(raw)


def first_host(nodelist: str, scontrol: str | None = None) -> str:
    """The first host of a SLURM node list: ``scontrol show hostnames`` when it exists, else parsed.

    The fallback handles SLURM's compressed form (``gpu[03-05,09],cpu1`` -> ``gpu03``).
    """
    scontrol = scontrol if scontrol is not None else shutil.which("scontrol")
    if scontrol:
        out = subprocess.run([scontrol, "show", "hostnames", nodelist], capture_output=True, text=True, check=False)
        hosts = out.stdout.split()
        if out.returncode == 0 and hosts:
            return hosts[0]
    head = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not head:
        raise InputError(f"cannot read a host from SLURM_JOB_NODELIST='{nodelist}'.", hint="set LMLAB_MASTER_ADDR")
    prefix, ranges = head.group(1), head.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def world_from_env(environ: Mapping[str, str] | None = None, port: int = 29500) -> World:
    """The launch's world from ``LMLAB_*`` variables, else the SLURM job's, else one local process."""
    env = os.environ if environ is None else environ
    slurm_gpus = env.get("SLURM_GPUS_ON_NODE", "").strip()
    default_procs = int(slurm_gpus) if slurm_gpus.isdigit() and int(slurm_gpus) > 0 else 1
    per_node = _positive(env, PROCESSES_ENV, default_procs)
    nodes = _positive(env, NODES_ENV, _positive(env, "SLURM_NNODES", 1))
    if nodes == 1:
        return World(per_node, 1, 0, "127.0.0.1", _positive(env, "LMLAB_MASTER_PORT", port))
    # one launch per node (srun --ntasks-per-node=1): SLURM_NODEID, or the task's rank SLURM_PROCID
    rank_raw = env.get("LMLAB_NODE_RANK") or env.get("SLURM_NODEID") or env.get("SLURM_PROCID")
    if rank_raw is None or not rank_raw.isdigit() or int(rank_raw) >= nodes:
        raise InputError(f"{nodes} nodes were asked for but this node's rank is unknown or out of range "
                         f"(SLURM_NODEID/LMLAB_NODE_RANK = {rank_raw!r}).",
                         hint="run the launch once per node with `srun --ntasks-per-node=1`, which sets SLURM_NODEID")
    addr = env.get("LMLAB_MASTER_ADDR") or first_host(env.get("SLURM_JOB_NODELIST", "") or env.get("SLURM_NODELIST", ""))
    return World(per_node, nodes, int(rank_raw), addr, _positive(env, "LMLAB_MASTER_PORT", port))


def accelerate_config(params: LauncherParams, world: World, use_cpu: bool) -> dict[str, Any]:
    """The ``accelerate launch --config_file`` YAML for this launch (what ``accelerate config`` would write).

    Mixed precision stays ``no`` here: each stage's ``precision`` param sets it in its Trainer.
    """
    distributed = {"ddp": "MULTI_CPU" if use_cpu else "MULTI_GPU", "fsdp": "FSDP", "deepspeed": "DEEPSPEED"}
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": distributed[params.strategy],
        "num_machines": world.nodes,
        "num_processes": world.size,
        "machine_rank": world.node_rank,
        "main_process_ip": world.master_addr,
        "main_process_port": world.master_port,
        "rdzv_backend": "static",  # torchrun --rdzv-endpoint=<main_process_ip>:<port> with the static backend
        "mixed_precision": "no",
        "use_cpu": use_cpu,
        "debug": False,
    }
    if params.strategy == "fsdp":
        config["fsdp_config"] = {
            "fsdp_version": 1,
            "fsdp_sharding_strategy": params.fsdp_sharding,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # one unit per transformer block (the model's _no_split_modules)
            "fsdp_offload_params": params.offload,
            "fsdp_state_dict_type": "FULL_STATE_DICT",  # a whole model gathered on rank 0 for save_pretrained
            "fsdp_use_orig_params": True,  # needed for LoRA (frozen and trainable weights in one unit)
            "fsdp_sync_module_states": True,
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_backward_prefetch": "BACKWARD_PRE",
            "fsdp_forward_prefetch": False,
            "fsdp_activation_checkpointing": False,  # the stage's gradient_checkpointing param does it
        }
    if params.strategy == "deepspeed":
        offload = "cpu" if params.offload else "none"
        config["deepspeed_config"] = {
            "zero_stage": params.zero_stage,
            "offload_optimizer_device": offload,
            "offload_param_device": offload if params.zero_stage == 3 else "none",
            "zero3_init_flag": params.zero_stage == 3,
            "zero3_save_16bit_model": params.zero_stage == 3,
            "deepspeed_multinode_launcher": "standard",
        }
    return config


def launch_command(config_file: str | Path, script_args: Sequence[str]) -> list[str]:
    """The equivalent shell command (logged, and what a user can run by hand on the same node)."""
    return ["accelerate", "launch", "--config_file", str(config_file), *script_args]


def load_launcher_params(script_args: Sequence[str]) -> LauncherParams:
    """``launcher:`` of the params file the stage reads (its ``--params``, default ``params.yaml``)."""
    from lmlab.config import build_params, read_params_file, section_of

    path = "params.yaml"
    for i, arg in enumerate(script_args):
        if arg == "--params" and i + 1 < len(script_args):
            path = script_args[i + 1]
        elif arg.startswith("--params="):
            path = arg.split("=", 1)[1]
    if not Path(path).is_file():
        return LauncherParams()
    data = read_params_file(path)
    node = data.get("launcher") if hasattr(data, "get") else None
    if node is None:
        return LauncherParams()
    return build_params(LauncherParams, section_of(data, "launcher", path), key_prefix="launcher", path=path, node=node)


def _use_cpu() -> bool:
    device = os.environ.get("LMLAB_DEVICE", "auto")
    if device == "cpu":
        return True
    import torch

    return not torch.cuda.is_available()


def _run_torchrun(config_file: Path, script_args: Sequence[str]) -> int:
    """Launch as ``accelerate launch`` does for DDP/FSDP, but return the first failed worker's exit code."""
    from accelerate.commands.launch import _filter_args, _validate_launch_command, launch_command_parser
    from accelerate.utils import patch_environment
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed import run as distrib_run
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args(["--config_file", str(config_file), *script_args])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)  # accelerate's env for the Accelerator (FSDP_*, mixed precision, ...)
    torchrun_args = _filter_args(args, distrib_run.get_args_parser(),
                                 ["--training_script", args.training_script,
                                  "--training_script_args", args.training_script_args])
    # the elastic agent's own error lines repeat what the summary below says
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    with patch_environment(**env):
        try:
            distrib_run.run(torchrun_args)
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            code = failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1
            if code != EXIT_INPUT_ERROR:
                logger.error("launch: process %d of %d failed first (exit code %s; its log is above)",
                             rank, int(env.get("WORLD_SIZE", 0)) or args.num_processes, failure.exitcode)
            return code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmlab.launch stages/<stage>.py [args...]`` (what ``scripts/launch`` runs for N > 1)."""
    from lmlab.logs import setup_logging

    script_args = list(sys.argv[1:] if argv is None else argv)
    setup_logging(os.environ.get("DVC_STAGE") or "launch")
    try:
        if not script_args:
            raise InputError("usage: scripts/launch stages/<stage>.py [stage arguments...]")
        params = load_launcher_params(script_args)
        world = world_from_env(port=params.port)
        use_cpu = _use_cpu()
        if params.strategy != "ddp" and use_cpu:
            raise InputError(f"launcher.strategy '{params.strategy}' shards a model over GPUs; accelerate runs CPU "
                             "processes as DDP only.", hint="set launcher.strategy: ddp on CPU")
        if params.strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
            raise InputError("launcher.strategy is 'deepspeed' but the deepspeed package is not installed.",
                             hint="pip install deepspeed on the GPU nodes (it builds CUDA kernels), or use "
                             "launcher.strategy: fsdp, which needs nothing beyond torch")
    except LmlabError as exc:
        logger.error("launch failed: %s", exc)
        return EXIT_INPUT_ERROR
    config = accelerate_config(params, world, use_cpu)
    with tempfile.TemporaryDirectory(prefix="lmlab-launch-") as tmp:
        config_file = Path(tmp) / "accelerate_config.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=True))
        logger.info("launch: %d process(es) x %d node(s) (node %d, rendezvous %s:%d), strategy %s: %s",
                    world.processes_per_node, world.nodes, world.node_rank, world.master_addr, world.master_port,
                    params.strategy, " ".join(launch_command(config_file, script_args)))
        if params.strategy == "deepspeed":
            from accelerate.commands.launch import launch_command as accelerate_launch
            from accelerate.commands.launch import launch_command_parser

            accelerate_launch(launch_command_parser().parse_args(["--config_file", str(config_file), *script_args]))
            return 0
        return _run_torchrun(config_file, script_args)


if __name__ == "__main__":
    sys.exit(main())
