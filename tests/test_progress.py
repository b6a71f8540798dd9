"""Progress that reads well in a file (log lines with rate and ETA) and as a bar on a terminal."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest
import torch

from lmlab.progress import (
    LogProgress,
    format_duration,
    progress,
    progress_bars,
    quiet_library_bars,
    trainer_progress_callback,
)
from tests.test_training import _run

LOOP = textwrap.dedent("""
    import time
    from lmlab.logs import setup_logging
    from lmlab.progress import progress
    setup_logging("demo")
    for _ in progress(range(6), desc="loop", unit="docs"):
        time.sleep(0.06)
""")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_log_progress_logs_at_the_interval_with_rate_and_eta(caplog) -> None:
    clock = FakeClock()
    bar = LogProgress(total=10, desc="mask train", unit="docs", interval=30, clock=clock,
                      log=logging.getLogger("t"))
    with caplog.at_level(logging.INFO, logger="t"):
        for second in (10, 20, 40, 50, 60):
            clock.now = 100 + second
            bar.update(1)
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    # one line when 30 s had passed (t=40: 3 docs in 40 s), none at 50/60, and the final one
    assert lines == [
        "mask train: 3/10 docs (30%), 13.3 s/doc, elapsed 0:00:40, ETA 0:01:33",
        "mask train: done, 5/10 docs in 0:01:00 (12 s/doc)",
    ]
    bar.close()  # idempotent
    assert len(caplog.records) == 2


def test_log_progress_of_a_resumed_run_counts_only_its_own_steps_in_the_rate(caplog) -> None:
    clock = FakeClock()
    bar = LogProgress(total=300, desc="train", unit="steps", interval=0, start=100, clock=clock,
                      log=logging.getLogger("t"))
    with caplog.at_level(logging.INFO, logger="t"):
        clock.now += 50
        bar.update(100)
    assert caplog.records[0].getMessage() == "train: 200/300 steps (67%), 2 steps/s, elapsed 0:00:50, ETA 0:00:50"


def test_rates_read_as_plain_numbers(caplog) -> None:
    clock = FakeClock()
    bar = LogProgress(total=3000, desc="mask", unit="docs", interval=0, clock=clock, log=logging.getLogger("t"))
    with caplog.at_level(logging.INFO, logger="t"):
        clock.now += 2
        bar.update(2450)
        clock.now += 1
        bar.update(550)
    assert [r.getMessage() for r in caplog.records] == [
        "mask: 2450/3000 docs (82%), 1225 docs/s, elapsed 0:00:02, ETA 0:00:00",
        "mask: 3000/3000 docs (100%), 1000 docs/s, elapsed 0:00:03, ETA 0:00:00",
    ]


def test_format_duration_and_unknown_totals(caplog) -> None:
    assert format_duration(0) == "0:00:00" and format_duration(3 * 86400 + 61) == "72:01:01"
    big = LogProgress(total=2_000_000, desc="mask", unit="docs", interval=0, clock=FakeClock(),
                      log=logging.getLogger("t"))
    big.n = 1_234_567
    assert big.line().startswith("mask: 1234567/2000000 docs (62%)")
    bar = LogProgress(desc="mask", unit="docs", interval=0, clock=FakeClock(), log=logging.getLogger("t"))
    with caplog.at_level(logging.INFO, logger="t"):
        bar.update(2)
    assert caplog.records[0].getMessage() == "mask: 2 docs, ? docs/s, elapsed 0:00:00"  # no total: no ETA


def test_mode_follows_the_terminal_and_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("LMLAB_PROGRESS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not progress_bars() and isinstance(progress(range(3), desc="x"), LogProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert progress_bars() and not isinstance(progress(range(3), desc="x"), LogProgress)
    monkeypatch.setenv("LMLAB_PROGRESS", "0")
    assert not progress_bars()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LMLAB_PROGRESS"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_without_a_terminal_a_log_file_gets_progress_lines_and_no_carriage_return(tmp_path: Path) -> None:
    log = tmp_path / "slurm-1.out"
    with open(log, "wb") as handle:
        subprocess.run([sys.executable, "-c", LOOP], stdout=handle, stderr=subprocess.STDOUT, check=True,
                       env=_env(LMLAB_PROGRESS_INTERVAL="0.1"), stdin=subprocess.DEVNULL)
    text = log.read_text()
    assert "\r" not in text
    lines = re.findall(r"\[demo\] lmlab\.progress: loop: (\d)/6 docs \(\d+%\), [\d.]+ (?:docs/s|s/doc), "
                       r"elapsed \d:\d\d:\d\d, ETA \d:\d\d:\d\d", text)
    assert 1 <= len(lines) < 6, text  # periodic, not per item
    assert re.search(r"loop: done, 6/6 docs in \d:\d\d:\d\d \([\d.]+ (docs/s|s/doc)\)", text), text


def test_on_a_terminal_the_loop_draws_a_bar(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    proc = subprocess.Popen([sys.executable, "-c", LOOP], stdout=follower, stderr=follower, stdin=subprocess.DEVNULL,
                            env=_env(LMLAB_PROGRESS_INTERVAL="0.1"))
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text
    assert "\r" in text and "6/6" in text and "loop" in text, text
    assert "lmlab.progress" not in text  # no log lines on a terminal


def _library_bars_back_on() -> None:
    import datasets
    import huggingface_hub
    from transformers.utils import logging as hf_logging

    datasets.enable_progress_bars()
    huggingface_hub.utils.enable_progress_bars()
    hf_logging.enable_progress_bar()


@pytest.mark.slow  # two tiny training runs, ~10 s on a loaded machine
def test_trainer_without_a_terminal_logs_progress_lines_and_trains_the_same_weights(
        tmp_path: Path, tiny_tokenizer, tiny_texts, monkeypatch, caplog, capfd) -> None:
    monkeypatch.setenv("LMLAB_PROGRESS_INTERVAL", "0")
    monkeypatch.setenv("LMLAB_PROGRESS", "1")
    with_bars = _run(tmp_path, tiny_tokenizer, tiny_texts[:16], name="bars")
    capfd.readouterr()
    monkeypatch.setenv("LMLAB_PROGRESS", "0")
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(name, raising=False)
    quiet_library_bars()  # what every stage's setup_logging does
    try:
        with caplog.at_level(logging.INFO, logger="lmlab.progress"):
            with_logs = _run(tmp_path, tiny_tokenizer, tiny_texts[:16], name="logs")
    finally:
        _library_bars_back_on()
    out, err = capfd.readouterr()
    assert "\r" not in out + err and "{'loss'" not in out  # neither tqdm bars nor PrinterCallback's dicts
    lines = [r.getMessage() for r in caplog.records if r.name == "lmlab.progress"]
    assert any(re.fullmatch(r"train: \d/4 steps \(\d+%\), [\d.]+ (steps/s|s/step), elapsed .*, ETA .*", m)
               for m in lines), lines
    assert any(m.startswith("train: step 1/4 loss=") for m in lines), lines
    assert any(m.startswith("train: done, 4/4 steps") for m in lines), lines
    for a, b in zip(with_bars.model.state_dict().values(), with_logs.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_trainer_callback_is_a_trainer_callback() -> None:
    from transformers import TrainerCallback

    assert isinstance(trainer_progress_callback(), TrainerCallback)
