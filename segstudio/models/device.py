"""Where a network runs and at which precision: device choice, mixed-precision support, threads."""

from __future__ import annotations

import os

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ValueError):
    """A device or precision the user asked for that this machine cannot provide."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def choose_device(preference: str = "auto") -> torch.device:
    """The device to run on: CUDA, then Apple MPS, then the CPU for ``"auto"``.

    An explicit ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` is checked, so asking for a GPU
    the machine lacks is an error that says so rather than a crash deep inside torch.
    """
    pref = str(preference).strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(pref)
    except RuntimeError:
        raise DeviceError(f"unknown device {preference!r}; use auto, cpu, cuda, cuda:N or mps") \
            from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "a CPU-only build" if torch.version.cuda is None else \
                f"built for CUDA {torch.version.cuda}, but no usable GPU or driver was found"
            raise DeviceError(f"device {preference!r} was asked for, but this torch is {built}")
        index = 0 if device.index is None else device.index
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(f"device {preference!r} was asked for, but only {count} CUDA "
                              f"device(s) exist (cuda:0..cuda:{count - 1})")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise DeviceError(f"device {preference!r} was asked for, but Apple MPS is not "
                              "available on this machine")
        return torch.device("mps")
    raise DeviceError(f"unsupported device {preference!r}; use auto, cpu, cuda, cuda:N or mps")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix units (AVX-512 BF16 or AMX) that oneDNN uses.

    Without them bf16 on the CPU is emulated and slower than fp32, so ``"auto"`` keeps fp32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return torch.backends.cpu.get_cpu_capability() in ("AVX512_BF16", "AMX")


def choose_precision(preference: str, device: torch.device) -> str:
    """Resolve ``"auto"`` to the fastest precision that keeps labels faithful on ``device``.

    CUDA gets bf16 where the GPU supports it (no overflow risk), else fp16; CPUs get bf16 only
    with native support; MPS stays fp32 (its autocast coverage varies between releases).
    """
    pref = str(preference).strip().lower()
    if pref not in PRECISIONS:
        raise DeviceError(f"unknown precision {preference!r}; use {', '.join(PRECISIONS)}")
    if pref != "auto":
        if pref != "fp32" and not torch.amp.is_autocast_available(device.type):
            raise DeviceError(f"precision {pref} needs autocast, which torch does not offer "
                              f"on {device.type}")
        return pref
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


def default_num_threads() -> int:
    """Torch CPU threads that leave one core free for the GUI thread.

    ``SEGSTUDIO_TORCH_THREADS`` overrides it (tests and shared machines set it to 1).
    """
    value = os.environ.get("SEGSTUDIO_TORCH_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, (os.cpu_count() or 1) - 1)


def describe(device: torch.device) -> str:
    """``"cpu"``, ``"cuda:0"`` or ``"mps"``: the device as a user reads it."""
    if device.type == "cuda":
        return f"cuda:{0 if device.index is None else device.index}"
    return device.type
