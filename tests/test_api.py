"""The public API is small and locked: a change to it is a deliberate change to this test."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

import torchfit
from torchfit import Overrides, Settings, Variant


def test_public_names_are_locked() -> None:
    assert sorted(torchfit.__all__) == [
        "Check",
        "Detection",
        "Diagnosis",
        "Finding",
        "Gpu",
        "IndexFetchError",
        "InstallFailed",
        "InstallInterrupted",
        "InstallResult",
        "InstallerMissing",
        "NoCompatibleWheel",
        "Overrides",
        "Plan",
        "PlannedWheel",
        "Probe",
        "ResolutionConflict",
        "Session",
        "Settings",
        "Target",
        "TorchfitError",
        "UsageError",
        "Variant",
        "Verification",
        "VerificationFailed",
        "__version__",
        "detect",
        "doctor",
        "install",
        "plan",
        "verify",
    ]
    for name in torchfit.__all__:
        assert hasattr(torchfit, name), name
    assert sorted(dir(torchfit)) == sorted(torchfit.__all__)


# The call shapes users write; the text is inspect.signature's, annotations as written.
SIGNATURES = {
    "plan": "(requirements: 'Sequence[str] | str', settings: 'Settings | None' = None, *,"
    " detection: 'Detection | None' = None, **options: 'Any') -> 'Plan'",
    "install": "(requirements: 'Sequence[str] | str', settings: 'Settings | None' = None, *,"
    " installer: 'Installer' = 'pip', extra_args: 'Sequence[str]' = (), **options: 'Any')"
    " -> 'InstallResult'",
    "detect": "(settings: 'Settings | None' = None, **options: 'Any') -> 'Detection'",
    "verify": "(python: 'str | None' = None, settings: 'Settings | None' = None,"
    " **options: 'Any') -> 'Verification'",
    "doctor": "(python: 'str | None' = None, settings: 'Settings | None' = None,"
    " **options: 'Any') -> 'Diagnosis'",
    "Session.plan": "(self, requirements: 'Sequence[str] | str' = (), *,"
    " requirement_files: 'Sequence[str | Path]' = (),"
    " constraint_files: 'Sequence[str | Path]' = ()) -> 'Plan'",
    "Session.install": "(self, requirements: 'Sequence[str] | str | Plan', *,"
    " installer: 'Installer' = 'pip', extra_args: 'Sequence[str]' = (), dry_run: 'bool' = False,"
    " on_output: 'Callable[[str], None] | None' = None) -> 'InstallResult'",
    "Session.verify": "(self, plan: 'Plan | None' = None) -> 'Verification'",
    "Session.doctor": "(self) -> 'Diagnosis'",
    "Session.restore": "(self, *, on_output: 'Callable[[str], None] | None' = None)"
    " -> 'RestoreResult'",
    "Session.detect": "(self) -> 'Detection'",
    "Session.download": "(self, requirements: 'Sequence[str] | str' = (), *,"
    " dest: 'Path | str', requirement_files: 'Sequence[str | Path]' = (),"
    " constraint_files: 'Sequence[str | Path]' = (),"
    " on_output: 'Callable[[str], None] | None' = None) -> 'DownloadResult'",
    "Session.lock": "(self, requirements: 'Sequence[str] | str' = (), *,"
    " requirement_files: 'Sequence[str | Path]' = (),"
    " constraint_files: 'Sequence[str | Path]' = (),"
    " format: 'LockFormat' = 'pylock') -> 'LockResult'",
    "Session.index_url": "(self, requirements: 'Sequence[str] | str' = (), *,"
    " requirement_files: 'Sequence[str | Path]' = (),"
    " constraint_files: 'Sequence[str | Path]' = ()) -> 'IndexUrlResult'",
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_public_signatures_are_locked(name: str) -> None:
    owner, _, attribute = name.rpartition(".")
    function = getattr(getattr(torchfit, owner) if owner else torchfit, attribute)
    assert str(inspect.signature(function)) == SIGNATURES[name]


def test_settings_fields_are_locked() -> None:
    assert [f.name for f in dataclasses.fields(torchfit.Settings)] == [
        "overrides",
        "variant",
        "compat",
        "force",
        "index",
        "offline",
        "refresh",
        "cache_dir",
        "trusted_hosts",
        "python",
        "python_version",
        "platforms",
        "timeout",
        "ca_bundle",
        "netrc",
        "require_hashes",
        "find_links",
        "root",
        "all_gpus",
    ]


def test_every_public_module_declares_all() -> None:
    # Public: the top-level modules without a leading underscore. The subpackages are the
    # implementation (their layout may change); what they offer users is re-exported here.
    package = Path(torchfit.__file__).parent
    public = [p.stem for p in package.glob("*.py") if not p.stem.startswith("_")]
    assert sorted(public) == ["errors", "results", "session", "settings", "types", "variants"]
    for name in public:
        module = importlib.import_module(f"torchfit.{name}")
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"


def test_types_lists_what_the_package_exports() -> None:
    import torchfit.types

    assert set(torchfit.types.__all__) <= set(torchfit.__all__)


def test_every_error_is_a_torchfit_error() -> None:
    for name in torchfit.__all__:
        value = getattr(torchfit, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, torchfit.TorchfitError), name


def test_library_plan_returns_typed_values() -> None:
    plan = torchfit.plan(
        "torch==1.7.1",
        Settings(overrides=Overrides(cuda=(10, 1)), offline=True, cache_dir=None),
        python_version="3.8",
        platforms=("win_amd64",),
    )
    assert isinstance(plan, torchfit.Plan)
    assert plan.variant == Variant.parse("cu101")
    (torch,) = plan.packages
    assert isinstance(torch, torchfit.PlannedWheel)
    assert torch.filename == "torch-1.7.1+cu101-cp38-cp38-win_amd64.whl"


def test_library_detect_honours_overrides() -> None:
    detection = torchfit.detect(Settings(overrides=Overrides(driver="450.80.02")))
    assert detection.max_cuda == (11, 0)
    assert detection.source == "override"


def test_library_reads_torchfit_variables_like_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCHFIT_CUDA", "10.1")
    monkeypatch.setenv("TORCHFIT_CACHE_DIR", str(Path(__file__).parent / "no-such-cache"))
    plan = torchfit.plan(
        "torch==1.7.1", offline=True, python_version="3.8", platforms=["win_amd64"]
    )
    assert plan.variant == Variant.parse("cu101")
    # An option given wins over the variable.
    plan = torchfit.plan(
        "torch==1.7.1", offline=True, cuda=(10, 2), python_version="3.8", platforms=["win_amd64"]
    )
    assert plan.variant == Variant.parse("cu102")


def test_unknown_library_option_is_a_usage_error() -> None:
    with pytest.raises(torchfit.UsageError, match="unknown option 'cudaa'"):
        torchfit.plan("torch", cudaa=(12, 8))


def test_library_and_cli_give_the_same_error_for_the_same_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from torchfit.cli.main import main

    argv = ["torch==1.7.1", "--cuda", "10.1", "--offline", "--python-version", "3.8"]
    argv += ["--platform", "linux_x86_64"]
    code = main(["install", *argv], env={"TORCHFIT_CACHE_DIR": "-"})
    cli_error = capsys.readouterr().err.splitlines()[0]
    with pytest.raises(torchfit.UsageError) as caught:
        torchfit.install(
            "torch==1.7.1",
            cuda=(10, 1),
            offline=True,
            python_version="3.8",
            platforms=["linux_x86_64"],
            cache_dir=None,
        )
    assert code == 2
    assert cli_error == f"error: {caught.value.message}"
