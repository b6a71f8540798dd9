"""lmlab.warmstart: a stage forked from a warm interpreter behaves as the fresh process it replaces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lmlab import warmstart

PROBE = textwrap.dedent("""
    import json, os, sys
    report = {
        "argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("DVC_STAGE"), "path0": sys.path[0],
        "warm": os.environ.get("LMLAB_WARM_CLIENT_START") is not None,
        "lmlab_loaded": sorted(m for m in sys.modules if m == "lmlab" or m.startswith("lmlab.")),
        "stdin": sys.stdin.read(),
    }
    print(json.dumps(report), flush=True)
    print("to stderr", file=sys.stderr)
    sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
""")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, LMLAB_WARM_DIR=str(tmp_path / "warm"), LMLAB_WARM_PRELOAD="json",
               LMLAB_WARM_IDLE="30")
    env.pop("LMLAB_WARM", None)
    env.update(extra)
    return env


def _client(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmlab.warmstart", *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _wait_for_server(env: dict[str, str], timeout: float = 60) -> Path:
    path = warmstart.socket_path(warmstart.server_key(_pinned(env)), env)
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"no server at {path}"
        time.sleep(0.1)
    return path


def _pinned(env: dict[str, str]) -> dict[str, str]:
    """The environment the client computes its key from: ``import lmlab`` pins the numerics first."""
    from lmlab.numerics import pin_environment

    pinned = dict(env)
    pin_environment(pinned)
    return pinned


@pytest.fixture()
def served(tmp_path: Path):
    """A probe script, an environment, and a warm server for it (started by a first, plain run)."""
    script = tmp_path / "work" / "probe.py"
    script.parent.mkdir()
    script.write_text(PROBE)
    env = _env(tmp_path)
    first = _client([str(script)], env, tmp_path)
    assert first.returncode == 0, first.stderr
    _wait_for_server(env)
    yield script, env
    warmstart.shutdown(tmp_path / "warm")


def test_the_first_run_is_plain_and_starts_a_server(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = _env(tmp_path)
    proc = _client([str(script), "x"], env, tmp_path)
    import json

    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and not report["warm"]
    assert _wait_for_server(env).exists()
    warmstart.shutdown(tmp_path / "warm")


def _servers_for(path: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_stages_started_while_the_server_imports_do_not_start_another(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = _env(tmp_path, LMLAB_WARM_PRELOAD="torch")  # seconds of imports: the next stages come meanwhile
    for _ in range(3):
        assert _client([str(script)], env, tmp_path).returncode == 0
    path = _wait_for_server(env)
    try:
        assert len(_servers_for(path)) == 1
        assert not path.with_suffix(".starting").exists()
    finally:
        warmstart.shutdown(tmp_path / "warm")


def test_a_served_child_gets_argv_cwd_env_stdio_and_exit_code(served, tmp_path: Path) -> None:
    import json

    script, env = served
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # DVC_STAGE differs from stage to stage: it reaches the child without asking for another server
    proc = _client([str(script), "--flag", "two words", "3"], dict(env, DVC_STAGE="probe@1"), elsewhere,
                   stdin="piped in")
    report = json.loads(proc.stdout)
    assert proc.returncode == 3
    assert report["warm"], "the run was not served by the warm server"
    assert report["argv"] == [str(script), "--flag", "two words", "3"]
    assert report["cwd"] == str(elsewhere)
    assert report["probe"] == "probe@1"
    assert report["path0"] == str(script.parent)
    assert report["stdin"] == "piped in"
    assert proc.stderr.strip() == "to stderr"


def test_the_child_imports_lmlab_from_disk_not_from_the_server(served, tmp_path: Path) -> None:
    import json

    script, env = served
    proc = _client([str(script)], env, tmp_path)
    report = json.loads(proc.stdout)
    assert report["warm"]
    assert report["lmlab_loaded"] == [], "lmlab modules leaked from the server into the child"


def test_an_uncaught_exception_prints_its_traceback_and_exits_1(served, tmp_path: Path) -> None:
    _, env = served
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nassert os.environ.get('LMLAB_WARM_CLIENT_START')\nraise ValueError('boom')\n")
    proc = _client([str(bad)], env, tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ValueError: boom" in proc.stderr


def test_signals_reach_the_child_and_a_killed_client_takes_it_down(served, tmp_path: Path) -> None:
    _, env = served
    sleeper = tmp_path / "sleeper.py"
    pid_file = tmp_path / "child.pid"
    sleeper.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n")

    def start() -> tuple[subprocess.Popen, int]:
        pid_file.unlink(missing_ok=True)
        client = subprocess.Popen([sys.executable, "-m", "lmlab.warmstart", str(sleeper)], env=env, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert child != client.pid, "not served: the client ran the script itself"
        return client, child

    client, child = start()
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=30) == 128 + signal.SIGTERM
    client, child = start()
    client.kill()  # SIGKILL: no chance to relay; the server notices the closed connection
    client.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, "the orphaned child is still running"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return status != "Z"


def test_disabled_runs_plainly_and_starts_no_server(tmp_path: Path) -> None:
    import json

    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    for env in (_env(tmp_path, LMLAB_WARM="0"), _env(tmp_path, WORLD_SIZE="2")):
        proc = _client([str(script)], env, tmp_path)
        assert proc.returncode == 0 and not json.loads(proc.stdout)["warm"]
    time.sleep(1)
    assert not list((tmp_path / "warm").glob("*.sock"))


def test_the_key_ignores_per_stage_variables_and_follows_the_rest() -> None:
    base = {"PATH": "/usr/bin", "HF_HUB_OFFLINE": "1"}
    key = warmstart.server_key(base)
    assert warmstart.server_key(dict(base, DVC_STAGE="ilm_train@A1", PWD="/x", LMLAB_STAGE_TIMES="t")) == key
    assert warmstart.server_key(dict(base, HF_HUB_OFFLINE="0")) != key
    assert warmstart.server_key(dict(base, OMP_NUM_THREADS="1")) != key


def test_an_idle_server_exits_and_removes_its_socket(tmp_path: Path) -> None:
    env = _env(tmp_path, LMLAB_WARM_IDLE="1")
    path = tmp_path / "warm" / "idle.sock"
    path.parent.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "lmlab.warmstart", "--serve", str(path)], env=env)
    assert server.wait(timeout=60) == 0
    assert not path.exists() and not path.with_suffix(".pid").exists()


TRAIN = textwrap.dedent("""
    import hashlib, sys
    import lmlab
    from lmlab.numerics import check_pin
    check_pin()
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, 64))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(512, 64)
    for _ in range(20):
        loss = (model(x) - x).pow(2).mean()
        loss.backward(); opt.step(); opt.zero_grad()
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    print(digest, torch.get_num_threads(), "torch" in sys.modules)
""")


@pytest.mark.slow
def test_warm_and_plain_runs_compute_the_same_bytes(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = _env(tmp_path, LMLAB_WARM_PRELOAD="torch,transformers")
    plain = _client([str(script)], env, tmp_path)  # plain, and starts the server
    assert plain.returncode == 0, plain.stderr
    _wait_for_server(env)
    try:
        warm = _client([str(script)], env, tmp_path)
        assert warm.returncode == 0, warm.stderr
        fresh = _client([str(script)], dict(env, LMLAB_WARM="0"), tmp_path)
    finally:
        warmstart.shutdown(tmp_path / "warm")
    assert warm.stdout == plain.stdout == fresh.stdout


def test_process_start_is_read_to_the_tick_not_to_the_boot_second() -> None:
    before = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        started = warmstart.process_started_at(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    # psutil's create_time() is off by the fraction of a second the kernel's boot time drops (0-1 s)
    assert before - 0.05 <= started <= before + 0.5


def test_stop_ends_every_server_of_the_directory(served, tmp_path: Path) -> None:
    _, env = served
    (pid,) = [int(p.read_text()) for p in (tmp_path / "warm").glob("*.pid")]
    proc = subprocess.run([sys.executable, "-m", "lmlab.warmstart", "--stop"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "stopped 1 server(s)" in proc.stderr
    deadline = time.monotonic() + 30
    while _alive(pid):
        assert time.monotonic() < deadline, "the server is still running"
        time.sleep(0.1)
    assert not list((tmp_path / "warm").glob("*.sock"))
