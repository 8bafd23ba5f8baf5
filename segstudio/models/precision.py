"""What ``precision="auto"`` may use: a reduced precision only where it is measured to pay.

A reduced precision is a *candidate* only where the hardware computes it natively: CUDA (bf16
where the GPU has it, else fp16) and CPUs with AVX-512 BF16 or AMX units. oneDNN emulates bf16
on any other AVX-512 CPU, which is several times slower than fp32, so the emulation is never a
candidate. A candidate is then *calibrated* once per model, device and machine: fp32 and the
candidate run on the first image the model sees, and the candidate is kept only when it is at
least 15 % faster and its labels agree with fp32's on at least 99.5 % of the pixels (for
instance models, also the same objects). The verdict is cached in the user data folder, so
calibration costs a few forward passes once, and the Model panel shows it in words.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from segstudio.core.instance_metrics import match_instances
from segstudio.io.atomic import atomic_write_text
from segstudio.io.cache_entry import (EntryMismatch, expect_number, expect_one_of, shown,
                                      take_entry)
from segstudio.paths import user_data_dir

AGREEMENT_FLOOR = 0.995        # share of pixels whose label must match fp32's
MAX_TIME_RATIO = 0.85          # the candidate's time over fp32's: at least 15 % faster
CACHE_NAME = "precision-calibration.json"
CANDIDATES = ("bf16", "fp16")  # the reduced precisions a calibration compares with fp32
CALIBRATION_SIDE = 512        # calibration runs on the first image, shrunk to fit this square
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Calibration:
    """One measured comparison of fp32 and a reduced precision for one model on one machine."""

    candidate: str              # "bf16" or "fp16"
    fp32_ms: float
    candidate_ms: float
    agreement: float            # share of pixels with the same label, 0..1
    same_objects: bool | None   # instance models: the same objects found (None: not one)
    sample: str                 # the input it was measured on, e.g. "256×256"

    @property
    def speedup(self) -> float:
        return self.fp32_ms / max(self.candidate_ms, 1e-9)

    @property
    def chosen(self) -> str:
        fast = self.candidate_ms <= MAX_TIME_RATIO * self.fp32_ms
        faithful = self.agreement >= AGREEMENT_FLOOR and self.same_objects is not False
        return self.candidate if fast and faithful else "fp32"

    def describe(self) -> str:
        """What the Model panel and the CLI say about the choice."""
        speed = (f"{self.speedup:.1f}× faster" if self.speedup >= 1
                 else f"{1 / self.speedup:.1f}× slower")
        measured = (f"{speed}, {100 * self.agreement:.2f} % agreement"
                    + ("" if self.same_objects is None else
                       ", same objects" if self.same_objects else ", different objects"))
        if self.chosen != "fp32":
            return f"{self.candidate}: {measured}, measured on this machine ({self.sample})"
        why = []
        if self.candidate_ms > MAX_TIME_RATIO * self.fp32_ms:
            why.append("not 15 % faster")
        if self.agreement < AGREEMENT_FLOOR:
            why.append(f"under {100 * AGREEMENT_FLOOR:.1f} % agreement")
        if self.same_objects is False:
            why.append("objects differ")
        return (f"fp32: {self.candidate} was {measured} on this machine ({self.sample}); "
                f"kept fp32 ({', '.join(why)})")


def decide(candidate: str, run: Callable[[str], tuple[np.ndarray, np.ndarray | None]],
           sample: str, repeats: int = 3, sync: Callable[[], None] = lambda: None,
           warm_up: bool = True) -> Calibration:
    """Measure ``run(precision) -> (labels, instance ids or None)`` in fp32 and ``candidate``.

    Each precision runs once to warm up (kernels, caches), then ``repeats`` times interleaved
    with the other, and the fastest time of each counts: the least disturbed by other work.
    ``warm_up=False`` skips the warm-up, for runs of many seconds (an image encoder's) in which
    setting up kernels is lost; the first timed run of each then gives its answer.
    """
    results, times = {}, {"fp32": [], candidate: []}
    for precision in ("fp32", candidate) if warm_up else ():
        results[precision] = run(precision)
        sync()
    for _ in range(repeats):
        for precision in ("fp32", candidate):
            start = time.perf_counter()
            found = run(precision)
            sync()
            times[precision].append(time.perf_counter() - start)
            results.setdefault(precision, found)
    (labels32, ids32), (labels_c, ids_c) = results["fp32"], results[candidate]
    agreement = float(np.mean(labels32 == labels_c))
    same = None
    if ids32 is not None:
        counts = match_instances(ids32, labels32, ids_c, labels_c)
        same = counts.fp == 0 and counts.fn == 0
    return Calibration(candidate=candidate, fp32_ms=1000 * min(times["fp32"]),
                       candidate_ms=1000 * min(times[candidate]), agreement=agreement,
                       same_objects=same, sample=sample)


def machine_signature(device_name: str, threads: int) -> str:
    """What the speed of a precision depends on besides the model: hardware, kernels, threads."""
    import torch

    if device_name.startswith("cuda"):
        index = int(device_name.partition(":")[2] or 0)
        hw = f"{torch.cuda.get_device_name(index)} sm{''.join(map(str, torch.cuda.get_device_capability(index)))}"
    else:
        hw = f"{_cpu_model()} {torch.backends.cpu.get_cpu_capability()} threads={threads}"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "-"
    return f"{device_name} | {hw} | onednn<={isa} | torch {torch.__version__}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def checkpoint_fingerprint(path: str | Path) -> str:
    """A checkpoint file as its path, size and modification time: a new file, a new verdict.
    A model folder (Hugging Face, SAM 2) is its path and each of its files' names, sizes and
    times: a weights file replaced inside it is a new model, though the folder's own time may
    not change."""
    path = Path(path).resolve()
    st = path.stat()
    if path.is_dir():
        parts = [str(path)]
        for child in sorted(path.iterdir()):
            if child.is_file():
                c = child.stat()
                parts.append(f"{child.name}:{c.st_size}:{c.st_mtime_ns}")
        return "|".join(parts)
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


class CalibrationCache:
    """Verdicts keyed by model fingerprint and machine signature, in one small JSON file.

    A damaged or foreign file is treated as empty (calibration simply runs again); a failed
    write is ignored for the same reason: the cache only saves time. Each entry is read
    through :func:`segstudio.io.cache_entry.take_entry` and :func:`check_calibration`: one no
    measurement can give is dropped from the file, said in one line, and measured again.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else user_data_dir() / CACHE_NAME

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, key: str) -> Calibration | None:
        """The verdict stored under ``key``, once it is checked to be a possible measurement;
        an impossible one (a time of 0 ms, 500 % agreement) is dropped, to be measured again."""
        entries = self._load()
        if key not in entries:
            return None
        return take_entry(f"{self.path.name} [{key}]", lambda: Calibration(**entries[key]),
                          check_calibration, lambda: self._drop(key), redo="measured")

    def _drop(self, key: str) -> None:
        entries = self._load()
        entries.pop(key, None)
        self._write(entries)

    def put(self, key: str, calibration: Calibration) -> None:
        entries = self._load()
        entries[key] = asdict(calibration)
        try:
            self._write(entries)
        except OSError:
            pass

    def _write(self, entries: dict) -> None:
        atomic_write_text(self.path, json.dumps({"version": _CACHE_VERSION,
                                                 "entries": entries}, indent=1))


def check_calibration(found: Calibration) -> None:
    """Refuse a calibration no measurement can give: times that are not positive finite
    milliseconds, agreement outside 0..1, an unknown precision, values of the wrong type."""
    expect_one_of(found.candidate, CANDIDATES, "the candidate precision")
    expect_number(found.fp32_ms, "the fp32 time (ms)", positive=True)
    expect_number(found.candidate_ms, f"the {found.candidate} time (ms)", positive=True)
    expect_number(found.agreement, "the agreement", low=0.0, high=1.0)
    if found.same_objects is not None and not isinstance(found.same_objects, bool):
        raise EntryMismatch(f"same objects is {shown(found.same_objects)}, not true, false or "
                            "null")
    if not isinstance(found.sample, str):
        raise EntryMismatch(f"the sample is {shown(found.sample)}, not text")


def calibration_sample(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` shrunk (area average) to fit ``CALIBRATION_SIDE``: big enough to time fairly,
    small enough that calibrating costs a fraction of a second on native hardware."""
    h, w = rgb.shape[:2]
    scale = CALIBRATION_SIDE / max(h, w)
    if scale >= 1:
        return rgb
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
