"""Stage entry points (lmlab.stage): labels, exit codes and what a failed stage tells the user."""

from __future__ import annotations

import errno
import logging

import pytest

from lmlab.errors import InputError
from lmlab.stage import EXIT_INPUT_ERROR, stage_label, stage_main, what_next


def _probe(raise_: BaseException | None):
    @stage_main("ilm_train")
    def main(argv=None) -> None:
        logging.getLogger("lmlab.probe").info("working")
        if raise_ is not None:
            raise raise_

    return main


def test_the_label_is_the_dvc_stage_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert stage_label("ilm_train") == "ilm_train"
    monkeypatch.setenv("DVC_STAGE", "ilm_train@B2")
    assert stage_label("ilm_train") == "ilm_train@B2"


def test_log_lines_name_the_stage_instance(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DVC_STAGE", "ilm_train@B2")
    assert _probe(None)([]) == 0
    assert "[ilm_train@B2] lmlab.probe: working" in capsys.readouterr().err


def test_an_input_error_exits_2_and_says_how_to_rerun(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DVC_STAGE", "ilm_train@B2")
    code = _probe(InputError("bad row.", path="x.csv", line=3, hint="drop it."))([])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT_ERROR
    assert "ilm_train@B2 failed: x.csv:3: bad row. Fix: drop it. Then re-run `dvc repro ilm_train@B2`." in err


def test_an_unexpected_error_is_reraised_with_advice(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    with pytest.raises(ZeroDivisionError):
        _probe(ZeroDivisionError("division by zero"))([])
    err = capsys.readouterr().err
    assert "ilm_train crashed with ZeroDivisionError (traceback below)" in err
    assert "re-run the stage to retry" in err


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "lower the stage's batch_size"),
        (MemoryError(), "lower the stage's batch_size"),
        (OSError(errno.ENOSPC, "No space left on device"), "dvc gc -w"),
        (KeyError("x"), "report it with this log"),
    ],
)
def test_what_next_matches_the_failure(exc: BaseException, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_STAGE", "wl_train@baseline")
    advice = what_next(exc, "wl_train@baseline")
    assert expected in advice and "dvc repro wl_train@baseline" in advice


def test_every_stage_process_reports_start_up_and_work(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import json
    import time

    times = tmp_path / "profile" / "times.jsonl"
    monkeypatch.setenv("LMLAB_STAGE_TIMES", str(times))
    monkeypatch.setenv("DVC_STAGE", "demo@x")

    @stage_main("demo")
    def works(argv=None):
        time.sleep(0.2)

    @stage_main("demo")
    def refuses(argv=None):
        raise InputError("bad input.")

    assert works([]) == 0 and refuses([]) == EXIT_INPUT_ERROR
    first, second = (json.loads(line) for line in times.read_text().splitlines())
    assert first["stage"] == "demo@x" and first["status"] == "ok" and first["work_s"] >= 0.2
    assert first["startup_s"] > 0  # this test process started (and imported pytest) before the stage body
    assert first["process_start"] + first["startup_s"] + first["work_s"] == pytest.approx(first["end"], abs=0.01)
    assert second["status"] == "input error"


def test_an_unwritable_times_file_never_fails_the_stage(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LMLAB_STAGE_TIMES", str(blocker / "times.jsonl"))  # parent is a file

    @stage_main("demo")
    def works(argv=None):
        pass

    assert works([]) == 0
