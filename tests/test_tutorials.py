"""Every tutorial runs from start to end (in its fast mode) and writes its figures."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))


def test_there_are_tutorials_to_run():
    assert TUTORIALS, "tutorials/*.py not found"


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs_and_writes_its_figures(tutorial, tmp_path):
    env = dict(os.environ, ASTROBAYES_FAST="1", ASTROBAYES_TUTORIAL_OUTPUT=str(tmp_path / "output"),
               MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(tutorial)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    # Tutorials announce each saved figure as "figure: PATH".
    figures = [Path(line.split(":", 1)[1].strip()) for line in done.stdout.splitlines() if line.startswith("figure:")]
    assert figures, "the tutorial saved no figure"
    for figure in figures:
        assert figure.is_relative_to(tmp_path / "output"), figure
        assert figure.suffix == ".png" and figure.stat().st_size > 5_000, figure
    assert sorted(p.name for p in (tmp_path / "output").glob("*.png")) == sorted(f.name for f in figures)
