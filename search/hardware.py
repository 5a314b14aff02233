"""The local machine as a fingerprint, and a profile on it as a ``Hardware`` record.

The fingerprint holds what changes how fast and in how much memory a model runs: CPU model,
usable cores, memory, OS, the ONNX Runtime version and its execution providers. A hardware
row is one profile on one fingerprint; its id is a hash of those fields (``kb.schema``), so
the same profile on the same machine is one row however many processes measure on it, and a
runtime upgrade starts a new one.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from kb.errors import KBError
from kb.keys import canonical_json
from kb.meta import package_version
from kb.schema import Hardware
from search.profiles import CUDA_PROVIDER, Profile
from kb.validation import with_keys

RUNTIME = "onnxruntime"
# SIMD extensions ONNX Runtime dispatches on; two CPUs with one model name rarely differ here,
# but a VM may hide some of them, and int8 speed depends on VNNI.
_SPEED_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                "avx512_bf16", "amx_int8", "neon", "asimd", "asimddp", "sve")


@dataclass(frozen=True)
class Machine:
    """What this machine is, as far as running a model goes."""

    cpu_model: str
    cores: int  # logical CPUs this process may use (affinity and container quota applied)
    physical_cores: int | None
    memory_mb: float  # physical memory
    os: str  # system and architecture: "Linux x86_64"
    os_release: str
    cpu_flags: tuple[str, ...]
    python: str
    runtime_version: str  # ONNX Runtime
    providers: tuple[str, ...]  # ONNX Runtime execution providers usable here
    torch_version: str | None
    torch_cuda: bool | None  # None: not probed (importing torch takes a second)
    gpu: str | None  # name of the first NVIDIA GPU, where one is visible

    @property
    def has_cuda(self) -> bool:
        return CUDA_PROVIDER in self.providers or bool(self.torch_cuda)

    def details(self) -> dict:
        """The fingerprint beyond the hashed fields, for the hardware row's ``details``."""
        return {
            "physical_cores": self.physical_cores, "os_release": self.os_release,
            "cpu_flags": list(self.cpu_flags), "python": self.python,
            "providers": list(self.providers), "torch": self.torch_version, "gpu": self.gpu,
        }


def detect_machine(*, probe_torch: bool = False) -> Machine:
    """This machine's fingerprint. ``probe_torch`` also asks torch for a CUDA device."""
    import onnxruntime
    import psutil

    providers = tuple(p for p in onnxruntime.get_available_providers()
                      if p != "AzureExecutionProvider")  # a remote-call provider, not hardware
    torch_version = package_version("torch")
    return Machine(
        cpu_model=_cpu_model(),
        cores=usable_cores(),
        physical_cores=psutil.cpu_count(logical=False),
        memory_mb=float(round(psutil.virtual_memory().total / 2**20)),
        os=f"{platform.system()} {platform.machine()}",
        os_release=platform.release(),
        cpu_flags=_cpu_flags(),
        python=platform.python_version(),
        runtime_version=onnxruntime.__version__,
        providers=providers,
        torch_version=torch_version,
        torch_cuda=_torch_cuda() if probe_torch and torch_version else None,
        gpu=_gpu_name(),
    )


def hardware_record(machine: Machine, profile: Profile, *, source: str = "measured") -> Hardware:
    """The hardware row of ``profile`` on ``machine``, with its id."""
    return with_keys(Hardware(
        name=profile.name,
        kind=profile.kind,
        source=source,
        cpu_model=machine.cpu_model,
        cores=machine.cores,
        threads=threads_used(profile, machine),
        memory_mb=machine.memory_mb,
        os=machine.os,
        runtime=RUNTIME,
        runtime_version=machine.runtime_version,
        execution_provider=profile.execution_provider,
        quantization=None if profile.quantization == "none" else profile.quantization,
        details=canonical_json(machine.details()),
    ))


def threads_used(profile: Profile, machine: Machine) -> int:
    return machine.cores if profile.threads is None else profile.threads


def offered(profile: Profile, machine: Machine) -> bool:
    """Whether ``profile`` is listed here: a CUDA profile only where CUDA exists at all."""
    return profile.execution_provider != CUDA_PROVIDER or machine.has_cuda


def unusable_reason(profile: Profile, machine: Machine) -> str | None:
    """Why ``profile`` cannot be measured on ``machine``, or None if it can."""
    if profile.execution_provider not in machine.providers:
        hint = (" (install onnxruntime-gpu in place of onnxruntime)"
                if profile.execution_provider == CUDA_PROVIDER else "")
        return (f"ONNX Runtime here has no {profile.execution_provider}{hint}; it has "
                f"{', '.join(machine.providers)}")
    if profile.threads is not None and profile.threads > machine.cores:
        return (f"it asks for {profile.threads} threads and this machine has "
                f"{machine.cores} usable cores, so its latencies would measure contention")
    return None


def require_usable(profile: Profile, machine: Machine) -> None:
    reason = unusable_reason(profile, machine)
    if reason:
        raise KBError(f"profile {profile.name!r} cannot run here: {reason}")


def machine_summary(machine: Machine) -> dict:
    return {**asdict(machine), "cpu_flags": list(machine.cpu_flags),
            "providers": list(machine.providers)}


# -- probes ------------------------------------------------------------------------------------


def usable_cores() -> int:
    """Logical CPUs this process may run on, after CPU affinity and a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_cpu_quota() -> float | None:
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except OSError:
        return None
    if len(fields) == 2 and fields[0] != "max":
        return int(fields[0]) / int(fields[1])
    return None


def _cpu_model() -> str:
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                key, _, value = line.partition(":")
                # x86 says "model name"; ARM kernels say "Hardware" or nothing useful.
                if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                    return value.strip()
        except OSError:
            pass
    if sys.platform == "darwin":
        found = _command_output(["sysctl", "-n", "machdep.cpu.brand_string"])
        if found:
            return found
    return platform.processor() or platform.machine() or "unknown"


def _cpu_flags() -> tuple[str, ...]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    present = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present.update(value.split())
    return tuple(f for f in _SPEED_FLAGS if f in present)


def _torch_cuda() -> bool:
    # Importing torch takes a second; without an NVIDIA device node it cannot find one anyway.
    device_nodes = ("/dev/nvidia0", "/proc/driver/nvidia", "/dev/dxg")  # /dev/dxg: WSL
    if sys.platform != "win32" and not any(Path(p).exists() for p in device_nodes):
        return False
    import torch

    return bool(torch.cuda.is_available())


def _gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    found = _command_output(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"])
    return found.splitlines()[0].strip() if found else None


def _command_output(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
