"""The Session: settings resolved once, the machine detected once, pages asked together."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from support import make_venv, serve_directory
from torchfit import Overrides, Session, Settings, UsageError
from torchfit._runner import Completed, run
from torchfit.environment.install import find_uv
from torchfit.index.client import IndexClient, bundled_snapshots
from torchfit.index.pages import Link
from torchfit.variants import Variant

ROOT = Path(__file__).resolve().parents[1]
TARGET = {"python_version": "3.8", "platforms": ("linux_x86_64",)}


def offline_client() -> IndexClient:
    return IndexClient(offline=True, cache_dir=None, snapshots=bundled_snapshots())


class Rendezvous:
    """A page source whose first ``parties`` page reads must all be in flight at once:
    asked one after another, the barrier times out and the plan fails."""

    def __init__(self, inner: IndexClient, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=5)
        self.pages: list[tuple[str, str]] = []

    def links(self, project: str, variant: Variant) -> list[Link]:
        self.pages.append((project, variant.tag))
        if len(self.pages) <= self.barrier.parties:
            self.barrier.wait()
        return self.inner.links(project, variant)

    def prefetch(self, project: str, variants: Iterable[Variant]) -> None:
        self.inner.prefetch(project, variants)

    def metadata(self, link: Link) -> bytes | None:
        return self.inner.metadata(link)


def test_the_family_pages_are_asked_together() -> None:
    source = Rendezvous(offline_client(), parties=2)
    with Session(Settings(overrides=Overrides(cuda=(10, 1)), **TARGET), source=source) as s:
        plan = s.plan(["torch==1.7.1", "torchvision"])
    assert [p.version for p in plan.packages] == ["1.7.1+cu101", "0.8.2+cu101"]
    assert sorted(source.pages[:2]) == [("torch", "cu101"), ("torchvision", "cu101")]


class CountingRunner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> Completed:
        self.calls.append(list(argv))
        return run(argv, **kwargs)


def test_the_machine_is_detected_once_for_every_verb(tmp_path: Path) -> None:
    venv = make_venv(tmp_path / "venv")
    runner = CountingRunner()
    session = Session(python=str(venv), runner=runner, env={}, nvml=None)
    session.verify()
    session.doctor()
    smi = [argv for argv in runner.calls if argv[0] == "nvidia-smi"]
    assert len(smi) == 1
    assert session.detect() is session.machine


def test_settings_come_from_options_then_variables() -> None:
    env = {"TORCHFIT_CUDA": "12.4", "TORCHFIT_VARIANT": "cu121", "TORCHFIT_GPU_ARCH": "8.6,sm_61"}
    assert Session(env=env).settings.overrides == Overrides(cuda=(12, 4), gpu_arch=((8, 6), (6, 1)))
    # The driver and its CUDA are one fact: an option for either silences both variables.
    settings = Session(env=env, driver="550.54.14").settings
    assert settings.overrides == Overrides(driver="550.54.14", gpu_arch=((8, 6), (6, 1)))
    assert settings.variant == Variant.parse("cu121")
    assert Session(env=env, cuda=(11, 8)).settings.overrides.cuda == (11, 8)
    with pytest.raises(UsageError, match="invalid GPU architecture 'x'"):
        Session(env={"TORCHFIT_GPU_ARCH": "x"})


def test_options_over_a_complete_settings_value() -> None:
    base = Settings(overrides=Overrides(driver="418.39", gpu_arch=((7, 5),)), cache_dir=None)
    settings = Session(base, cuda=(12, 8), offline=True).settings
    assert settings.overrides == Overrides(cuda=(12, 8), gpu_arch=((7, 5),))
    assert (settings.cache_dir, settings.offline) == (None, True)
    # Text is parsed as the command line would; a wrong kind is a usage error.
    typed = Session(base, variant="cu128", cuda="12.8", gpu_arch=["8.6"]).settings
    assert typed.variant == Variant.parse("cu128") and typed.overrides.gpu_arch == ((8, 6),)
    for options, message in [
        ({"compat": "loose"}, "invalid compat 'loose'"),
        ({"platforms": "manylinux_2_28_x86_64"}, "platforms takes a list"),
        ({"variant": "cuda128"}, "unknown variant 'cuda128'"),
    ]:
        with pytest.raises(UsageError, match=message):
            Session(base, **options)


def test_find_uv_looks_beside_the_interpreter_first(tmp_path: Path) -> None:
    (tmp_path / "python").touch()
    (tmp_path / "uv").touch()
    assert find_uv(str(tmp_path / "python")) == str(tmp_path / "uv")


def test_a_flat_page_is_asked_once_however_many_ask(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "wheel_index_snapshots" / "torch_stable.html", site / "torch_stable.html")
    with serve_directory(site) as server:
        index = f"{server.url}/torch_stable.html"
        settings = Settings(
            overrides=Overrides(cuda=(10, 1)), index=index, cache_dir=None, **TARGET
        )
        with Session(settings) as session:
            plan = session.plan(["torch==1.7.1", "torchvision"])
    assert [p.version for p in plan.packages] == ["1.7.1+cu101", "0.8.2+cu101"]
    assert server.requests.count("/torch_stable.html") == 1
