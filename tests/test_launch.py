"""scripts/launch and lmlab.launch: the world from the environment (SLURM), the accelerate config, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lmlab import launch
from lmlab.launch import LauncherParams, World, accelerate_config, first_host, world_from_env
from tests.conftest import REPO_ROOT, dvc_env

SLURM_2_NODES = {"SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_PROCID": "1", "SLURM_GPUS_ON_NODE": "4",
                 "SLURM_JOB_NODELIST": "gpu[07-08]"}


def test_one_local_process_by_default() -> None:
    assert world_from_env({}) == World(1, 1, 0, "127.0.0.1", 29500)
    assert world_from_env({"LMLAB_NUM_PROCESSES": "3"}, port=1234) == World(3, 1, 0, "127.0.0.1", 1234)


def test_a_slurm_job_gives_nodes_node_rank_gpus_and_the_rendezvous_host() -> None:
    world = world_from_env(SLURM_2_NODES, port=29400)
    assert world == World(processes_per_node=4, nodes=2, node_rank=1, master_addr="gpu07", master_port=29400)
    assert world.size == 8
    # the environment's own choices win over SLURM's
    mine = world_from_env({**SLURM_2_NODES, "LMLAB_NUM_PROCESSES": "2", "LMLAB_MASTER_ADDR": "10.0.0.1",
                           "LMLAB_MASTER_PORT": "30000"})
    assert (mine.processes_per_node, mine.master_addr, mine.master_port, mine.size) == (2, "10.0.0.1", 30000, 4)
    # without SLURM_NODEID (an older SLURM, or a step started by hand) the task rank of srun --ntasks-per-node=1
    no_nodeid = {k: v for k, v in SLURM_2_NODES.items() if k != "SLURM_NODEID"}
    assert world_from_env({**no_nodeid, "SLURM_PROCID": "1"}).node_rank == 1


@pytest.mark.parametrize(("nodelist", "host"), [("gpu[03-05,09],cpu1", "gpu03"), ("node17", "node17"),
                                                ("a-b[1,2]", "a-b1")])
def test_first_host_of_a_compressed_nodelist(nodelist: str, host: str) -> None:
    assert first_host(nodelist, scontrol="") == host


def test_first_host_asks_scontrol_when_it_exists(tmp_path: Path) -> None:
    fake = tmp_path / "scontrol"
    fake.write_text("#!/bin/sh\n[ \"$1 $2\" = 'show hostnames' ] && printf 'alpha\\nbeta\\n'\n")
    fake.chmod(0o755)
    assert first_host("whatever[1-2]", scontrol=str(fake)) == "alpha"


def test_a_multi_node_launch_without_a_node_rank_is_an_input_error() -> None:
    with pytest.raises(launch.InputError, match="node's rank"):
        world_from_env({"SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "n[1-2]"})
    with pytest.raises(launch.InputError, match="LMLAB_NUM_PROCESSES must be a positive integer"):
        world_from_env({"LMLAB_NUM_PROCESSES": "0"})


def _accelerate_view(config: dict, tmp_path: Path, script_args: list[str]):
    """What ``accelerate launch --config_file`` makes of the config: its env and torchrun's arguments."""
    from accelerate.commands.launch import _filter_args, _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed import run as distrib_run

    path = tmp_path / "accelerate.yaml"
    path.write_text(yaml.safe_dump(config))
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(["--config_file", str(path), *script_args]))
    env = prepare_multi_gpu_env(args)
    torchrun = _filter_args(args, distrib_run.get_args_parser(),
                            ["--training_script", args.training_script, "--training_script_args", args.training_script_args])
    return args, env, torchrun


def test_multi_node_fsdp_config_becomes_the_right_torchrun_and_accelerate_environment(tmp_path: Path) -> None:
    world = world_from_env(SLURM_2_NODES, port=29871)
    config = accelerate_config(LauncherParams(strategy="fsdp", fsdp_sharding="SHARD_GRAD_OP", offload=True), world,
                               use_cpu=False)
    args, env, torchrun = _accelerate_view(config, tmp_path, ["stages/wl_train.py", "--config", "x"])
    assert args.use_fsdp and args.num_machines == 2 and args.num_processes == 8
    assert (torchrun.nnodes, torchrun.nproc_per_node, torchrun.node_rank) == ("2", "4", 1)
    assert (torchrun.rdzv_backend, torchrun.rdzv_endpoint) == ("static", "gpu07:29871")
    assert torchrun.training_script == "stages/wl_train.py" and torchrun.training_script_args == ["--config", "x"]
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_SHARDING_STRATEGY"] == "SHARD_GRAD_OP"
    assert env["FSDP_OFFLOAD_PARAMS"] == "true" and env["FSDP_USE_ORIG_PARAMS"] == "true"
    assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"


def test_ddp_on_one_node_is_plain_torchrun(tmp_path: Path) -> None:
    config = accelerate_config(LauncherParams(), World(2, master_port=29872), use_cpu=True)
    assert config["distributed_type"] == "MULTI_CPU" and "fsdp_config" not in config
    _, env, torchrun = _accelerate_view(config, tmp_path, ["stages/wl_train.py"])
    assert torchrun.nproc_per_node == "2" and env.get("ACCELERATE_USE_FSDP") != "true"
    assert launch.launch_command("c.yaml", ["stages/s.py", "--a"]) == ["accelerate", "launch", "--config_file",
                                                                        "c.yaml", "stages/s.py", "--a"]


def test_deepspeed_config_and_a_clear_error_without_deepspeed(tmp_path: Path, monkeypatch, caplog) -> None:
    config = accelerate_config(LauncherParams(strategy="deepspeed", zero_stage=3, offload=True), World(4), use_cpu=False)
    assert config["distributed_type"] == "DEEPSPEED"
    assert config["deepspeed_config"] == {
        "zero_stage": 3, "offload_optimizer_device": "cpu", "offload_param_device": "cpu", "zero3_init_flag": True,
        "zero3_save_16bit_model": True, "deepspeed_multinode_launcher": "standard"}
    params = tmp_path / "params.yaml"
    params.write_text("launcher:\n  strategy: deepspeed\n")
    monkeypatch.setattr(launch, "_use_cpu", lambda: False)
    monkeypatch.setattr(launch.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("LMLAB_NUM_PROCESSES", "2")
    assert launch.main(["stages/wl_train.py", "--params", str(params)]) == 2
    assert "deepspeed package is not installed" in caplog.text


def test_sharding_strategies_are_refused_on_cpu(tmp_path: Path, monkeypatch, caplog) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("launcher:\n  strategy: fsdp\n")
    monkeypatch.setattr(launch, "_use_cpu", lambda: True)
    assert launch.main(["stages/wl_train.py", "--params", str(params)]) == 2
    assert "shards a model over GPUs" in caplog.text


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**dvc_env(), **(env or {})}
    full["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full.get("PATH", "")])
    return subprocess.run([str(REPO_ROOT / "scripts" / "launch"), *args], capture_output=True, text=True, env=full)


def test_launch_refuses_a_bad_process_count_and_the_old_positional_count(tmp_path: Path) -> None:
    bad = _script("stages/wl_train.py", env={"LMLAB_NUM_PROCESSES": "two"})
    assert bad.returncode == 2 and "LMLAB_NUM_PROCESSES must be a positive integer, got 'two'" in bad.stderr
    old = _script("2", "stages/wl_train.py")
    assert old.returncode == 2 and "LMLAB_NUM_PROCESSES=2" in old.stderr


def test_one_process_is_the_plain_interpreter(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os, sys; print(os.environ.get('WORLD_SIZE', 'plain'), sys.argv[1:]); sys.exit(3)\n")
    proc = _script(str(probe), "--x", "1", env={"SLURM_GPUS_ON_NODE": "1"})
    assert proc.returncode == 3 and proc.stdout.strip() == "plain ['--x', '1']"


@pytest.mark.slow
def test_an_input_error_under_two_processes_exits_2_with_its_paragraph_and_no_traceback(tmp_path: Path) -> None:
    """Under torchrun an exit-2 worker used to become a ChildFailedError traceback and exit 1."""
    (tmp_path / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    full = {**dvc_env(), "LMLAB_NUM_PROCESSES": "2", "OMP_NUM_THREADS": "1", "LMLAB_MASTER_PORT": "29873"}
    full["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full.get("PATH", "")])
    full["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src")])
    proc = subprocess.run([str(REPO_ROOT / "scripts" / "launch"), str(REPO_ROOT / "stages" / "wl_train.py"),
                           "--config", "odds_1_2-baseline", "--train", "missing.jsonl", "--tokenizer", "tok",
                           "--out", "out", "--checkpoints", "ck", "--live", "live"],
                          cwd=tmp_path, capture_output=True, text=True, env=full, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "strategy ddp" in proc.stderr and "2 process(es)" in proc.stderr
    assert "missing.jsonl: file not found" in proc.stderr
    assert "Traceback" not in proc.stderr and "ChildFailedError" not in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "out").exists()
