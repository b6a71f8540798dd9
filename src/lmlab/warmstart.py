"""Warm start: run a stage script in a fork of a process that has already imported torch.

Why this exists: a stage process spends 4.5-5.5 s importing torch, transformers, the Trainer,
``datasets`` and ``accelerate`` before it computes anything, and an embedded ``dvc repro`` starts
48 of them (~160 s of a ~630 s repro, measured by ``bench/bench_repro_profile.py``). DVC runs
every stage as a fresh command, so the imports cannot be shared inside one process; they can be
shared through ``fork``, the way PyTorch's DataLoader and Python's ``multiprocessing`` forkserver
hand a warm interpreter to their workers.

How: ``scripts/run stages/x.py ...`` (and ``scripts/launch`` for one process) is
``python -m lmlab.warmstart stages/x.py ...``, a small client. It connects to a per-user Unix socket
named after everything the imports could depend on (interpreter, installed packages, environment).
The server there forks a child, which takes over the client's stdin/stdout/stderr (passed as file
descriptors), its working directory, arguments and environment, forgets every ``lmlab`` module
(so the child imports the library from disk exactly as a fresh process would: an edited
``src/lmlab`` is never served stale) and runs the script as ``__main__``. The client relays
signals to the child and exits with its status. Nothing is computed before the fork, so the
numerics pin (environment variables torch, MKL and oneDNN read at first use) holds in the child
as in a fresh process; the committed ``dvc.lock`` is reproduced byte for byte either way.

When there is no server yet, the client starts one in the background and runs its own stage the
plain way, so nobody ever waits for the server's imports; the next stage finds it warm. The
server exits after ``LMLAB_WARM_IDLE`` seconds without a request (default 300). ``LMLAB_WARM=0``
turns all of this off (every stage then ``exec``s a plain interpreter); so do several processes
(``WORLD_SIZE`` > 1, a torchrun worker) and platforms without ``fork`` or fd passing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["WARM_ENV", "PRELOAD_ENV", "IDLE_ENV", "DIR_ENV", "CLIENT_START_ENV", "PRELOAD", "warm_enabled", "server_key",
           "socket_dir", "socket_path", "process_started_at", "run", "serve", "shutdown", "main"]

WARM_ENV = "LMLAB_WARM"
PRELOAD_ENV = "LMLAB_WARM_PRELOAD"
IDLE_ENV = "LMLAB_WARM_IDLE"
DIR_ENV = "LMLAB_WARM_DIR"
CLIENT_START_ENV = "LMLAB_WARM_CLIENT_START"
"""Set in the child: when the client process started (``lmlab.stage`` counts start-up from it)."""

DEFAULT_IDLE_S = 300.0
PRELOAD = ("torch", "transformers", "transformers.trainer", "transformers.trainer_seq2seq",
           "transformers.models.gpt2.modeling_gpt2", "transformers.models.t5.modeling_t5",
           "transformers.models.llama.modeling_llama", "transformers.models.gpt_neox.modeling_gpt_neox",
           "datasets", "accelerate", "safetensors.torch", "tokenizers", "dvclive", "peft", "sentence_transformers",
           "scipy.stats", "sklearn.metrics", "pandas", "pyarrow", "nltk", "rouge_score.rouge_scorer", "matplotlib",
           "ruamel.yaml", "yaml", "psutil", "tqdm")
"""Imported by the server before it serves (each optional): what the stages import and pay for.
``LMLAB_WARM_PRELOAD=mod1,mod2`` replaces the list."""

# Variables that change from stage to stage or test to test and that no library reads at import.
_RUNTIME_ONLY = {"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES", "PYTEST_CURRENT_TEST",
                 "LMLAB_STAGE_TIMES", WARM_ENV, CLIENT_START_ENV}
_RUNTIME_PREFIXES = ("DVC_", "DVCLIVE_")
_HEADER = struct.Struct("!I")


def warm_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``LMLAB_WARM=0``, under several processes, or where fork/fd passing is missing."""
    environ = os.environ if environ is None else environ
    if environ.get(WARM_ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    if int(environ.get("WORLD_SIZE", "1") or 1) > 1:
        return False
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def server_key(environ: Mapping[str, str], executable: str = sys.executable) -> str:
    """A hash of what the server's imports depend on: interpreter, installed packages, environment.

    Installing or upgrading a package changes its site-packages directory, and this module's
    own source is part of the key, so a changed environment or server gets a new server.
    """
    digest = hashlib.sha256()
    digest.update(os.path.realpath(executable).encode())
    for path in [p for p in sys.path if p.endswith("site-packages")] + [__file__]:
        try:
            digest.update(f"{path}:{os.stat(path).st_mtime_ns}".encode())
        except OSError:
            continue
    for name in sorted(environ):
        if name not in _RUNTIME_ONLY and not name.startswith(_RUNTIME_PREFIXES):
            digest.update(f"\0{name}={environ[name]}".encode())
    return digest.hexdigest()[:20]


def socket_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where the servers' sockets live: ``$LMLAB_WARM_DIR``, default ``/tmp/lmlab-warm-<uid>``."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(DIR_ENV) or f"/tmp/lmlab-warm-{os.getuid()}")


def socket_path(key: str, environ: Mapping[str, str] | None = None) -> Path:
    """``<socket_dir>/<key>.sock``, in a directory only we can enter (created here)."""
    directory = socket_dir(environ)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_uid != os.getuid():
        raise PermissionError(f"{directory} belongs to another user")
    return directory / f"{key}.sock"


def _plain(argv: Sequence[str]) -> int:
    """Run the script in this process's place, as ``python script args`` would."""
    from lmlab.numerics import environment_before_pin

    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *argv], environment_before_pin())
    return 127  # pragma: no cover - execv does not return


def _send_message(sock: socket.socket, payload: Mapping[str, object], fds: Sequence[int] = ()) -> None:
    data = json.dumps(payload).encode()
    if fds:
        socket.send_fds(sock, [_HEADER.pack(len(data)) + data], list(fds))
    else:
        sock.sendall(_HEADER.pack(len(data)) + data)


def _recv_message(sock: socket.socket) -> dict:
    """One length-prefixed JSON message (see :func:`_send_message`)."""
    return json.loads(_recv_exact(sock, _HEADER.unpack(_recv_exact(sock, _HEADER.size))[0]))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("warm-start peer closed the connection")
        chunks += chunk
    return chunks


STARTING_TIMEOUT_S = 120.0


def _claim_start(path: Path) -> bool:
    """True for the one client that should start the server for ``path``.

    A server takes ~5 s to import; the stages that start meanwhile must not each start another
    (measured: four servers for one key, each paying the imports again). The claim is a file the
    server removes when it listens; a claim older than :data:`STARTING_TIMEOUT_S` is a failed start.
    """
    claim = path.with_suffix(".starting")
    for _ in range(2):
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return True
        except FileExistsError:
            try:
                if time.time() - claim.stat().st_mtime < STARTING_TIMEOUT_S:
                    return False
                claim.unlink()
            except FileNotFoundError:
                continue
    return False


def _spawn_server(path: Path, environ: Mapping[str, str]) -> None:
    """Start a detached server for ``path`` (its output goes to ``<path>.log``); never waits for it."""
    import subprocess

    log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 - handed to the child
    with log:
        subprocess.Popen([sys.executable, "-m", "lmlab.warmstart", "--serve", str(path)], env=dict(environ),
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                         close_fds=True, cwd="/")


def run(argv: Sequence[str], environ: MutableMapping[str, str] | None = None) -> int:
    """Client: run ``argv`` (``script.py args...``) in a warm child, or plainly when there is none."""
    environ = os.environ if environ is None else environ
    if not warm_enabled(environ) or not argv:
        return _plain(argv)
    started = process_started_at()
    try:
        path = socket_path(server_key(environ), environ)
    except OSError:
        return _plain(argv)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        try:
            if _claim_start(path):
                _spawn_server(path, environ)
        except OSError:
            pass
        return _plain(argv)
    from lmlab.numerics import environment_before_pin

    # the environment DVC gave us: the stage's own `import lmlab` pins it (and says what it replaced)
    child_env = environment_before_pin() if environ is os.environ else dict(environ)
    child_env[CLIENT_START_ENV] = repr(started)
    try:
        _send_message(sock, {"argv": list(argv), "cwd": os.getcwd(), "env": child_env}, [0, 1, 2])
        pid = _recv_message(sock)["pid"]
    except (OSError, ValueError, KeyError):
        sock.close()
        return _plain(argv)  # the server went away before it forked: nothing ran yet

    def relay(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, relay)
    try:
        reply = _recv_message(sock)
    except (OSError, ValueError):
        logger.error("lost the server while it ran %s (pid %d)", argv[0], pid)
        return 1
    return int(reply["status"])


def process_started_at(pid: int | str = "self") -> float:
    """When process ``pid`` started, wall clock, to ~10 ms; ``time.time()`` where /proc is missing.

    Its age is ``/proc/uptime`` minus its start in clock ticks since boot: both tick at 10 ms.
    ``psutil.Process().create_time()`` adds the start to the boot time, which the kernel gives in
    whole seconds (``btime``), so every start it reports is off by the same 0-1 s (measured 1.05 s
    here: each stage's "start-up" was overstated by that much).
    """
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


# ---------------------------------------------------------------------------------------------- server


def _preload() -> None:
    import importlib

    names = [n.strip() for n in os.environ[PRELOAD_ENV].split(",")] if os.environ.get(PRELOAD_ENV) else PRELOAD
    for name in filter(None, names):
        try:
            importlib.import_module(name)
        except Exception:  # an optional package, or one that fails only without a GPU: the child will tell
            continue


def _child(request: Mapping[str, object], fds: Sequence[int]) -> int:
    """In the forked child: become the client's process and run its script as ``__main__``."""
    import random
    import runpy

    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    argv = [str(a) for a in request["argv"]]  # type: ignore[union-attr]
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in request["env"].items()})  # type: ignore[union-attr]
    for name in [m for m in sys.modules if m == "lmlab" or m.startswith("lmlab.")]:
        del sys.modules[name]
    logger.handlers.clear()  # the server's own stderr handler (see main) is not the stage's
    logger.propagate = True
    sys.argv = argv
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdout.reconfigure(line_buffering=os.isatty(1), write_through=unbuffered)
    random.seed()  # a fresh process's random state, not the server's
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(torch.initial_seed())
    try:
        runpy.run_path(argv[0], run_name="__main__")
        status = 0
    except SystemExit as exc:
        code = exc.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        if code is not None and not isinstance(code, int):
            sys.stderr.write(f"{code}\n")  # what the interpreter does with SystemExit("message")
    except KeyboardInterrupt:
        status = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    return status


def _fork_child(conn: socket.socket, inherited: Sequence[object]) -> int | None:
    """Read one request from ``conn`` and fork its child; the pid, or None for a refused request."""
    try:
        if hasattr(socket, "SO_PEERCRED"):
            _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                            struct.calcsize("3i")))
            if uid != os.getuid():
                raise PermissionError(f"client uid {uid}")
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if len(head) < _HEADER.size:
            raise ConnectionError("short request")
        request = json.loads(_recv_exact(conn, _HEADER.unpack(head)[0]))
    except (OSError, ValueError) as exc:
        logger.warning("refused a request: %s", exc)
        conn.close()
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the server loop
        status = 1
        try:
            for item in [*inherited, conn]:
                item.close()  # type: ignore[attr-defined]  # the server's sockets and selector are not the child's
            status = _child(request, fds)
        finally:
            try:
                import atexit

                atexit._run_exitfuncs()  # what a fresh interpreter runs at exit (logging.shutdown, ...)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)
    for fd in fds:
        os.close(fd)
    try:
        _send_message(conn, {"pid": pid})
    except OSError:
        _kill(pid)
    return pid


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def serve(path: str | Path, idle_s: float | None = None) -> int:
    """Server: preload, listen on ``path``, fork a child per request; exit after ``idle_s`` idle."""
    import selectors

    path = Path(path)
    idle_s = float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_S)) if idle_s is None else idle_s
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    listener.bind(str(temporary))
    listener.listen(16)
    os.replace(temporary, path)  # the newest server wins a race; a loser idles out
    ours = os.stat(path).st_ino
    path.with_suffix(".pid").write_text(f"{os.getpid()}\n")
    path.with_suffix(".starting").unlink(missing_ok=True)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    try:
        while children or time.monotonic() - last_active < idle_s:
            for key, _ in selector.select(timeout=0.01 if children else 0.5):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    pid = _fork_child(conn, [listener, selector, *children.values()])
                    if pid:
                        children[pid] = conn
                        selector.register(conn, selectors.EVENT_READ, pid)
                    last_active = time.monotonic()
                elif not key.fileobj.recv(1, socket.MSG_PEEK):  # type: ignore[union-attr]
                    selector.unregister(key.fileobj)  # the client died: so must its child
                    _kill(key.data)
            for pid in list(children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
                conn = children.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                try:
                    _send_message(conn, {"status": code if code >= 0 else 128 - code})
                except OSError:
                    pass
                try:
                    selector.unregister(conn)
                except KeyError:  # already unregistered when its client died
                    pass
                conn.close()
                last_active = time.monotonic()
    finally:
        listener.close()
        try:
            if os.stat(path).st_ino == ours:
                path.unlink()
                path.with_suffix(".pid").unlink()
        except OSError:
            pass
    return 0


def shutdown(directory: str | Path) -> list[int]:
    """Stop every server whose socket is in ``directory`` (SIGTERM); the pids signalled.

    Servers exit on their own after ``LMLAB_WARM_IDLE`` seconds; this is for a test session or a
    script that wants no process left behind.
    """
    stopped = []
    for pid_file in Path(directory).glob("*.pid"):
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except (OSError, ValueError):
            pass
        for stale in (pid_file, pid_file.with_suffix(".sock")):
            try:
                stale.unlink()
            except OSError:
                pass
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lmlab.warmstart script.py [args...]`` (client), ``--serve SOCKET`` (server), ``--stop``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler()  # the client's stderr, or the server's log file
    handler.setFormatter(logging.Formatter("warmstart: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if argv[:1] == ["--serve"] and len(argv) == 2:
        return serve(argv[1])
    if argv == ["--stop"]:  # stop this user's servers (CI does, so no process outlives the job)
        directory = socket_dir()
        logger.info("stopped %d server(s) in %s", len(shutdown(directory)), directory)
        return 0
    if not argv or argv[0].startswith("-"):
        logger.error("usage: python -m lmlab.warmstart stages/<stage>.py [args...]")
        return 2
    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
