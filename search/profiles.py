"""Hardware profiles: how a model is run on a machine (threads, execution provider, quantization,
batch size, memory ceiling), built in or read from the KB's ``hardware.toml``.

A profile is a recipe, not a machine: ``cpu-1t`` on a laptop and ``cpu-1t`` on a server are
two hardware rows with two ids (``search.hardware`` adds the machine's fingerprint). User
profiles live in ``<kb>/hardware.toml`` so that everyone sharing a KB measures the same way::

    [profiles.edge-2t-int8]
    threads = 2                  # ONNX Runtime intra-op threads, or "all"
    quantization = "int8"        # "none" (default) or "int8" (dynamic int8)
    batch_size = 16              # the batch-N latency; batch 1 is always measured
    memory_limit_mb = 256        # peak inference memory above this makes a trial infeasible
    description = "what our 2-core edge box runs"

This module is pure parsing and validation; nothing here imports the runtime.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kb.errors import KBError

PROFILES_FILE = "hardware.toml"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
QUANTIZATIONS = ("none", "int8")
GPU_PROVIDERS = (CUDA_PROVIDER, "TensorrtExecutionProvider", "ROCMExecutionProvider",
                 "MIGraphXExecutionProvider", "DmlExecutionProvider")

# Parity tolerances: the largest absolute difference allowed between the trained model and the
# ONNX session, in probability for classifiers and in standard deviations of the target for
# regressors. Float32 conversion alone stays far below 1e-4; dynamic int8 weights move
# probabilities by up to a few hundredths by design, so int8 profiles get a looser default.
FLOAT_PARITY_TOLERANCE = 1e-4
INT8_PARITY_TOLERANCE = 0.05

# No '.': TOML reads [profiles.edge.v2] as a table "v2" inside a table "edge".
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Profile:
    """How models are run and measured. ``threads=None`` means every core of the machine."""

    name: str
    threads: int | None = 1
    execution_provider: str = CPU_PROVIDER
    quantization: str = "none"
    batch_size: int = 64
    memory_limit_mb: float | None = None
    warmup: int = 10  # untimed runs before each timed series
    repeats: int = 100  # timed runs at batch 1, at least (at batch N: a third, at least 10)
    min_measure_seconds: float = 0.5  # time a batch-1 series at least this long (batch N: half)
    max_measure_seconds: float = 10.0  # stop a timed series early past this (at least 10 runs)
    parity_tolerance: float | None = None  # None: by quantization (see above)
    description: str = ""
    source: str = "built-in"  # or the file the profile was read from

    @property
    def kind(self) -> str:
        return "gpu" if self.execution_provider in GPU_PROVIDERS else (
            "cpu" if self.execution_provider == CPU_PROVIDER else "accelerator")

    @property
    def tolerance(self) -> float:
        if self.parity_tolerance is not None:
            return self.parity_tolerance
        return INT8_PARITY_TOLERANCE if self.quantization == "int8" else FLOAT_PARITY_TOLERANCE

    def settings(self) -> dict:
        """The fields a user sets, as TOML and JSON show them (``threads = "all"``)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("name", "source")}
        out["threads"] = "all" if self.threads is None else self.threads
        return out


BUILTIN_PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="cpu-1t", threads=1,
                description="one intra-op thread, sequential execution"),
        Profile(name="cpu-all", threads=None,
                description="every core of the machine"),
        Profile(name="cpu-1t-int8", threads=1, quantization="int8",
                description="one thread, ONNX Runtime dynamic int8 quantization of the weights"),
        Profile(name="cuda", threads=1, execution_provider=CUDA_PROVIDER,
                description="the first CUDA device (offered only where one is usable)"),
    )
}

# What a TOML profile may set, with the check each value must pass.
_SETTABLE = {
    "threads": "a whole number >= 1 or \"all\"",
    "execution_provider": "an ONNX Runtime execution provider name, e.g. \"CPUExecutionProvider\"",
    "quantization": " or ".join(f'"{q}"' for q in QUANTIZATIONS),
    "batch_size": "a whole number >= 1",
    "memory_limit_mb": "a number > 0",
    "warmup": "a whole number >= 0",
    "repeats": "a whole number >= 10",
    "min_measure_seconds": "a number >= 0",
    "max_measure_seconds": "a number > 0",
    "parity_tolerance": "a number > 0",
    "description": "text",
}


def profile_from_settings(name: str, settings: dict, source: str) -> Profile:
    """A validated profile from TOML-style ``settings``; a KBError names the bad setting."""
    where = f"{source}: profile {name!r}"
    if not _NAME.match(name):
        raise KBError(f"{where}: a profile name is 1-64 lower-case letters (a-z), digits, '_' "
                      f"or '-', starting with a letter or digit")
    unknown = sorted(set(settings) - set(_SETTABLE))
    if unknown:
        raise KBError(f"{where}: unknown setting {unknown[0]!r}; the settings are: "
                      f"{', '.join(_SETTABLE)}")
    values = {}
    for key, value in settings.items():
        checked = _check(key, value)
        if checked is _INVALID:
            raise KBError(f"{where}: {key} must be {_SETTABLE[key]}, not {json.dumps(value)}")
        values[key] = checked
    return Profile(name=name, source=source, **values)


_INVALID = object()


def _check(key: str, value):
    def whole(minimum: int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return value if ok else _INVALID

    def positive():
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
        return float(value) if ok else _INVALID

    if key == "threads":
        return None if value == "all" else whole(1)
    if key == "execution_provider":
        ok = isinstance(value, str) and value.endswith("ExecutionProvider")
        return value if ok else _INVALID
    if key == "quantization":
        return value if value in QUANTIZATIONS else _INVALID
    if key == "batch_size":
        return whole(1)
    if key == "warmup":
        return whole(0)
    if key == "repeats":
        return whole(10)
    if key in ("memory_limit_mb", "max_measure_seconds", "parity_tolerance"):
        return positive()
    if key == "min_measure_seconds":
        return 0.0 if value == 0 and not isinstance(value, bool) else positive()
    if key == "description":
        return value if isinstance(value, str) else _INVALID
    raise AssertionError(key)


def read_profiles_file(path: Path) -> dict[str, Profile]:
    """The profiles defined in ``path`` (none if the file does not exist)."""
    text = _file_text(path)
    return {} if text is None else _parse_profiles(text, path)


def _file_text(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None


def _parse_profiles(text: str, path: Path) -> dict[str, Profile]:
    """The profiles of ``text``, the content of the profiles file ``path``, validated."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise KBError(f"{path} is not valid TOML ({e}); fix it or move it aside") from None
    extra = sorted(set(document) - {"profiles"})
    if extra:
        raise KBError(f"{path}: unexpected top-level entry {extra[0]!r}; define profiles as "
                      f"[profiles.NAME] tables")
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise KBError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    out = {}
    for name, settings in tables.items():
        if not isinstance(settings, dict):
            raise KBError(f"{path}: profiles.{name} must be a table ([profiles.{name}])")
        if name in BUILTIN_PROFILES:
            raise KBError(f"{path}: profile {name!r} is built in; give yours another name")
        out[name] = profile_from_settings(name, settings, str(path))
    return out


def all_profiles(kb_root: Path | None) -> dict[str, Profile]:
    """Built-in profiles, then those of ``<kb_root>/hardware.toml``."""
    user = read_profiles_file(kb_root / PROFILES_FILE) if kb_root is not None else {}
    return {**BUILTIN_PROFILES, **user}


def find_profile(name: str, kb_root: Path | None) -> Profile:
    profiles = all_profiles(kb_root)
    if name not in profiles:
        where = f" or in {kb_root / PROFILES_FILE}" if kb_root is not None else ""
        raise KBError(f"no hardware profile {name!r} built in{where}; the profiles are: "
                      f"{', '.join(profiles)} (`kb hardware add` defines one)")
    return profiles[name]


def append_profile(path: Path, profile: Profile) -> None:
    """Add ``profile`` as a new table at the end of ``path``, keeping what the file holds.

    The new file is read back and validated before it replaces the old one (atomically), so
    a profile that would not read back leaves the file as it was.
    """
    from kb.shards import atomic_write

    text = _file_text(path)
    if text is None:
        text = ("# metakb hardware profiles: how models are run and measured. `kb hardware list` "
                "shows\n# them; the settings are described in `kb hardware add --help`.\n")
    existing = _parse_profiles(text, path)
    if profile.name in existing or profile.name in BUILTIN_PROFILES:
        raise KBError(f"profile {profile.name!r} already exists"
                      + (f" in {path}; edit that file to change it" if profile.name in existing
                         else " (built in); give yours another name"))
    defaults = Profile(name=profile.name).settings()
    lines = [f"[profiles.{profile.name}]"]
    for key, value in profile.settings().items():
        if value is None or (value == defaults[key] and key != "threads"):
            continue
        # JSON text of a string, number or "all" is also valid TOML for these simple values.
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    separator = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    new_text = text + separator + "\n".join(lines) + "\n"
    try:
        read_back = _parse_profiles(new_text, path)
    except KBError as e:
        read_back = e
    if read_back != {**existing, profile.name: replace(profile, source=str(path))}:
        problem = f" ({read_back})" if isinstance(read_back, KBError) else ""
        raise KBError(f"profile {profile.name!r} would not read back from {path} as given"
                      f"{problem}; the file is unchanged")
    atomic_write(path.parent, path.name, lambda tmp: tmp.write_text(new_text, encoding="utf-8"))
