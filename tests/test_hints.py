"""Hints that fit the request (issue 11 item 8), over the bundled snapshots."""

from __future__ import annotations

import os

import pytest

from torchfit.cli.main import main

OFFLINE = ["--offline", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]


def _hint(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["plan", *argv, *OFFLINE], env={"TORCHFIT_CACHE_DIR": os.devnull})
    _, err = capsys.readouterr()
    assert code == 1
    return next(line for line in err.splitlines() if line.startswith("hint: "))


def test_a_pinned_torch_with_no_build_for_the_driver_names_the_nearest_releases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # torch 2.8.0: cu126 cu128 cu129; a CUDA 12.4 driver runs 2.7.1's cu118 build, and no
    # later release has a build it runs.
    hint = _hint(capsys, "torch==2.8.0", "--driver", "550.54.14")
    assert "pass --compat minor to use cu126, cu128 or cu129" in hint
    assert ", or pin torch==2.7.1 (cu118), the nearest release this driver runs" in hint
    # Between two releases that fit: both are named, the lower one first.
    hint = _hint(capsys, "torch==1.13.1", "--cuda", "11.3")
    assert "pin torch==1.12.1 (cu113)" in hint and "the nearest release this driver runs" in hint


def test_an_unpinned_torch_on_an_old_driver_names_the_newest_it_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    hint = _hint(capsys, "torch", "--cuda", "8.0")
    assert "relax the version" not in hint
    assert "the newest torch this driver can run is 1.0.1 (cu80)" in hint
    assert "update the NVIDIA driver to >= " in hint  # the driver the newest torch needs
