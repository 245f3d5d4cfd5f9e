"""`rig journal tail`: the last events of a journal file, oldest first, as text or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig.cli.main import main
from rig.events.journal import JOURNAL_FILE, Journal
from rig.events.models import ApiLost, StateChanged
from rig.safety.states import RigState


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    path = tmp_path / JOURNAL_FILE
    journal = Journal(path, on_fault=pytest.fail)
    journal.append(ApiLost(reason="first"), t_us=1)
    journal.append(
        StateChanged(from_state=RigState.READY, to_state=RigState.ACTIVE, cause="irrigate"), t_us=2
    )
    journal.append(ApiLost(reason="third"), t_us=3)
    journal.close()
    return path


def test_tail_prints_the_last_n_events_oldest_first(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "tail", "-n", "2", "--journal", str(journal_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert (
        lines[0].split()[0] == "2"
        and "transition" in lines[0]
        and '"to_state": "active"' in lines[0]
    )
    assert lines[1].split()[0] == "3" and "api_lost" in lines[1] and "third" in lines[1]


def test_tail_json_gives_the_journaled_events_whole(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["journal", "tail", "--json", "--journal", str(journal_file)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["seq"], e["kind"], e["t_us"]) for e in events] == [
        (1, "api_lost", 1),
        (2, "transition", 2),
        (3, "api_lost", 3),
    ]


def test_tail_without_a_journal_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(tmp_path))
    assert main(["journal", "tail"]) == 1
    assert "no rig is running here" in capsys.readouterr().err
    assert main(["journal", "tail", "--journal", str(tmp_path / "none.sqlite")]) == 1
    assert "no such journal" in capsys.readouterr().err
