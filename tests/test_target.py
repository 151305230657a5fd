"""Targets: the running interpreter, another one (asked in a subprocess), or tags by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging import tags

from support import find_python
from torchfit.environment.target import (
    current,
    expand_platform,
    for_interpreter,
    from_interpreter,
    from_spec,
)
from torchfit.errors import UsageError


def test_manylinux_admits_older_manylinux_and_linux() -> None:
    platforms = expand_platform("manylinux_2_28_x86_64")
    assert platforms[0] == "manylinux_2_28_x86_64"
    assert "manylinux2014_x86_64" in platforms and "manylinux_2_17_x86_64" in platforms
    assert platforms[-1] == "linux_x86_64"
    assert "manylinux_2_29_x86_64" not in platforms


def test_legacy_manylinux_alias() -> None:
    assert expand_platform("manylinux2014_aarch64")[0] == "manylinux_2_17_aarch64"


def test_macos_admits_older_macos() -> None:
    platforms = expand_platform("macosx_14_0_arm64")
    assert "macosx_11_0_arm64" in platforms and "macosx_15_0_arm64" not in platforms


def test_plain_platforms_stand_alone() -> None:
    assert expand_platform("win_amd64") == ["win_amd64"]
    assert expand_platform("linux_x86_64") == ["linux_x86_64"]


def test_spec_target_tags() -> None:
    target = from_spec("3.7", ["linux_x86_64"])
    assert target.tags[0] == tags.Tag("cp37", "cp37m", "linux_x86_64")
    assert target.os == "linux" and target.interpreter is None
    assert from_spec("3.12", ["win_amd64"]).os == "windows"


@pytest.mark.parametrize(
    ("version", "platforms", "message"),
    [
        ("3", ["win_amd64"], "invalid --python-version"),
        ("2.7", ["win_amd64"], "invalid"),
        ("3.8", [], "needs at least one --platform"),
        ("3.8", ["linux x86"], "invalid --platform"),
    ],
)
def test_bad_specs(version: str, platforms: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        from_spec(version, platforms)


def test_asking_this_interpreter_in_a_subprocess_agrees_with_packaging() -> None:
    target = from_interpreter(sys.executable)
    assert target == current()
    assert target.interpreter == sys.executable
    # The first tag packaging computes for this interpreter is one the target accepts.
    assert target.tag_rank(frozenset({next(iter(tags.sys_tags()))})) is not None


def test_another_interpreter() -> None:
    other = next(
        (found for v in ("3.9", "3.10", "3.12", "3.13") if (found := find_python(v))), None
    )
    if other is None:
        pytest.skip("no other CPython (3.9, 3.10, 3.12 or 3.13) runs on this machine")
    target = from_interpreter(other)
    assert target.python_version != sys.version_info[:2]


def test_a_missing_interpreter_is_a_usage_error(tmp_path: object) -> None:
    with pytest.raises(UsageError, match="cannot run --python"):
        from_interpreter("/nonexistent/python3")


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in interpreter is a shell script")
def test_an_active_environment_whose_python_does_not_start_names_the_variable(
    tmp_path: Path,
) -> None:
    """A venv whose base interpreter was removed: its bin/python is there but fails."""
    script = tmp_path / "broken" / "bin" / "python"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\necho 'base interpreter not found' >&2\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(UsageError, match=r"\(from VIRTUAL_ENV\) failed to start: base interp"):
        for_interpreter(None, {"VIRTUAL_ENV": str(tmp_path / "broken")})


def test_the_running_interpreters_own_environment_is_asked_in_process() -> None:
    def no_subprocess(*args: object, **kwargs: object) -> object:
        raise AssertionError("the running interpreter needs no probe")

    target = for_interpreter(None, {"VIRTUAL_ENV": sys.prefix}, no_subprocess)
    assert (target.interpreter, target.chosen_by) == (sys.executable, "VIRTUAL_ENV")
    assert target.to_json()["interpreter_from"] == "VIRTUAL_ENV"
