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


# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which it still uses the CPU's bf16 units.
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
              "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
              "AVX10_2_512_AMX_2", "ALL", "DEFAULT")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 units (AVX-512 BF16 or AMX) that oneDNN may use.

    ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is no test of that: it is true on every
    AVX-512 CPU, where oneDNN emulates bf16 several times slower than fp32. The CPU's own flags
    are, together with any ``ONEDNN_MAX_CPU_ISA`` cap below the bf16 instruction sets.
    """
    if not cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return False
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "")
    return not cap.strip() or cap.strip().upper() in _BF16_ISAS


def auto_candidate(device: torch.device) -> str | None:
    """The reduced precision ``"auto"`` may calibrate on ``device``; None keeps fp32 outright.

    CUDA: bf16 where the GPU supports it (no overflow risk), else fp16. CPU: bf16 only with
    native units. MPS: none (its autocast coverage varies between releases).
    """
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return None


def choose_precision(preference: str, device: torch.device) -> str:
    """Check a precision the user asked for; ``"auto"`` is returned as is.

    ``"auto"`` is settled by the Predictor, which measures the candidate of
    :func:`auto_candidate` against fp32 for its own network (:mod:`segstudio.models.precision`).
    """
    pref = str(preference).strip().lower()
    if pref not in PRECISIONS:
        raise DeviceError(f"unknown precision {preference!r}; use {', '.join(PRECISIONS)}")
    if pref not in ("auto", "fp32") and not torch.amp.is_autocast_available(device.type):
        raise DeviceError(f"precision {pref} needs autocast, which torch does not offer "
                          f"on {device.type}")
    return pref


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
