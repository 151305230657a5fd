"""Every resolver case file in tests/cases/ through one parametrized test.

Each case is a real question over the bundled snapshots (offline, no cache): a machine
(CUDA/driver override), a target (Python version + platform tags), requirements, and the
expected plan or error. Each names the real data it stands on in "data".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from torchfit import Overrides, Settings, TorchfitError, Variant, plan
from torchfit._runner import Completed
from torchfit.index.client import DEFAULT_INDEX
from torchfit.machine.detect import detect
from torchfit.machine.drivers import parse_driver_version
from torchfit.variants import parse_cuda

CASES = sorted((Path(__file__).parent / "cases").glob("*.json"))
FLAT = f"{DEFAULT_INDEX}/torch_stable.html"


def _settings(case: dict[str, Any]) -> Settings:
    driver = case.get("driver")
    assert driver is None or parse_driver_version(driver), driver
    return Settings(
        overrides=Overrides(
            cuda=parse_cuda(case["cuda"]) if case.get("cuda") else None,
            driver=driver,
            gpu_arch=tuple(parse_cuda(arch) for arch in case.get("gpu_arch", ())),
        ),
        variant=Variant.parse(case["variant"]) if case.get("variant") else None,
        compat=case.get("compat", "strict"),
        force=case.get("force", False),
        index=FLAT if case.get("index") == "flat" else DEFAULT_INDEX,
        offline=True,
        cache_dir=None,
        python_version=case["python_version"],
        platforms=tuple(case["platforms"]),
    )


def _no_nvidia_smi(argv: object, **_: object) -> Completed:
    return Completed(127, "", "", "not found")


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case.get("data"), "every case names the real data it stands on"
    settings = _settings(case)
    # No GPU here: the machine is the override (or nothing, for "no NVIDIA GPU").
    detection = detect(
        settings.overrides,
        nvml=None,
        runner=_no_nvidia_smi,
        proc_version=path.parent / "absent",
        os=case.get("os", "linux"),
    )
    if "error" in case:
        with pytest.raises(TorchfitError) as caught:
            plan(case["requirements"], settings, detection=detection)
        assert type(caught.value).__name__ == case["error"]["type"]
        assert case["error"]["contains"] in caught.value.message
        return
    result = plan(case["requirements"], settings, detection=detection)
    expected = case["expect"]
    assert result.variant.tag == expected["variant"]
    assert {p.name: p.version for p in result.packages} == expected["packages"]
    for name, filename in expected.get("filenames", {}).items():
        assert next(p.filename for p in result.packages if p.name == name) == filename
    for name, sha256 in expected.get("sha256", {}).items():
        assert next(p.sha256 for p in result.packages if p.name == name) == sha256


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40
