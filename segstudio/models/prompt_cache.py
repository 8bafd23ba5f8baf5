"""Image embeddings kept for reuse: the last few in memory, more on disk, per image and weights.

An embedding depends on the exact 8-bit image the network saw (so on the display window of a
16-bit image too) and on the weights file. The key is a hash of those pixels and of the weights
file's path, size and modification time, so an edited or replaced weights file never reuses an
old embedding. Disk files are written atomically, record their own key, and are read through
:func:`segstudio.io.cache_entry.take_entry`: a file that is damaged, or that is not the
embedding the segmenter would compute for this image now (another key, image size, input size
or feature shape, NaN values), is deleted with one line saying why, and computed again.

Each entry records the precision its encoder ran in. A request takes an entry of its own
precision, or an fp32 one: fp32 is the reference a reduced precision is measured against, so
it is never less than what was asked for. A reduced-precision entry never answers an fp32
request.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.cache_entry import EntryMismatch, expect_equal, take_entry
from segstudio.models.prompted import ImageEmbedding

# What a caller holds a stored embedding against: raises EntryMismatch (or any error) unless the
# embedding is what it would compute for an image of the given (H, W, …) shape.
EmbeddingCheck = Callable[[ImageEmbedding, tuple[int, ...]], None]

MEMORY_ITEMS = 8
DISK_BYTES = 1 << 30            # embeddings kept on disk: about 250 of ViT-B's 4 MB ones


def weights_key(path: str | Path) -> str:
    """Identity of a weights file (or model folder): its resolved path, size and modification
    time (a folder's: those of each file in it)."""
    path = Path(path).resolve()
    if path.is_dir():
        from segstudio.models.precision import checkpoint_fingerprint

        return hashlib.sha1(checkpoint_fingerprint(path).encode()).hexdigest()[:20]
    st = path.stat()
    return hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]


def image_key(rgb8: np.ndarray) -> str:
    """Hash of the pixels the network sees (and their shape)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr(rgb8.shape).encode())
    h.update(np.ascontiguousarray(rgb8).data)
    return h.hexdigest()


class EmbeddingCache:
    """Memory LRU in front of a folder of ``<weights key>/<image key>.pt`` files."""

    def __init__(self, folder: Path | None, memory_items: int = MEMORY_ITEMS,
                 disk_bytes: int = DISK_BYTES) -> None:
        self.folder = folder
        self.memory_items = memory_items
        self.disk_bytes = disk_bytes
        self._memory: OrderedDict[tuple[str, str], ImageEmbedding] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = {"memory": 0, "disk": 0, "computed": 0}

    def get_or_compute(self, weights: str, rgb8: np.ndarray,
                       compute: Callable[[], ImageEmbedding],
                       check: EmbeddingCheck, precision: str = "fp32") -> ImageEmbedding:
        """The embedding of ``rgb8`` under ``weights``: from memory, from disk, or computed.

        ``check`` is the segmenter's own (:meth:`PromptedSegmenter.check_embedding`): a file
        read from disk is used only once it passes, so it must be given. ``precision`` is the
        one asked for (an fp32 entry also answers a reduced one); a computed embedding is
        stored under the precision it records."""
        image = image_key(rgb8)
        found = self._from_memory(weights, image, precision)
        if found is not None:
            return found
        for p in _answering(precision):
            found = self._read((weights, image, p), rgb8.shape, check)
            if found is not None:
                self.hits["disk"] += 1
                break
        else:
            found = compute()
            self.hits["computed"] += 1
            self._write((weights, image, found.precision), found)
        key = (weights, image, found.precision)
        with self._lock:
            self._memory[key] = found
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)
        return found

    def in_memory(self, weights: str, rgb8: np.ndarray,
                  precision: str = "fp32") -> ImageEmbedding | None:
        """The embedding of ``rgb8`` if memory holds one that answers ``precision`` (the rule
        of :meth:`get_or_compute`), else None; nothing is read from disk or computed, so the
        GUI thread may ask."""
        return self._from_memory(weights, image_key(rgb8), precision)

    def _from_memory(self, weights: str, image: str, precision: str) -> ImageEmbedding | None:
        with self._lock:
            for p in _answering(precision):
                found = self._memory.get((weights, image, p))
                if found is not None:
                    self._memory.move_to_end((weights, image, p))
                    self.hits["memory"] += 1
                    return found
        return None

    def forget_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    # -- disk ----------------------------------------------------------------------------------
    def _path(self, key: tuple[str, str, str]) -> Path | None:
        # fp32 entries keep the name they had before the precision was recorded.
        weights, image, precision = key
        name = f"{image}.pt" if precision == "fp32" else f"{image}.{precision}.pt"
        return None if self.folder is None else self.folder / weights / name

    def _read(self, key, image_shape: tuple[int, ...],
              check: EmbeddingCheck) -> ImageEmbedding | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None

        def read() -> ImageEmbedding:
            data = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(data, dict):
                raise EntryMismatch(f"it holds a {type(data).__name__}, not an embedding")
            expect_equal(data.get("key"), list(key[:2]), "its key (weights, image)")
            # Files written before the precision was recorded were all computed in fp32.
            expect_equal(data.get("precision", "fp32"), key[2], "its precision")
            features = data["features"]
            if isinstance(features, list):          # a network of several feature maps
                features = tuple(features)
            return ImageEmbedding(features,
                                  tuple(int(v) for v in data["original_size"]),
                                  tuple(int(v) for v in data["input_size"]), key[2])

        found = take_entry(str(path), read, lambda emb: check(emb, tuple(image_shape)),
                           lambda: path.unlink(missing_ok=True))
        if found is not None:
            path.touch()                  # recently used: pruned last
        return found

    def _write(self, key, emb: ImageEmbedding) -> None:
        path = self._path(key)
        if path is None:
            return
        buffer = io.BytesIO()
        torch.save({"key": list(key[:2]), "precision": key[2],
                    "features": _stored(emb.features),
                    "original_size": list(emb.original_size),
                    "input_size": list(emb.input_size)}, buffer)
        try:
            atomic_write_bytes(path, buffer.getvalue())
            self._prune()
        except OSError:
            pass                          # a cache that cannot be written is only slower

    def _prune(self) -> None:
        files = sorted(self.folder.glob("*/*.pt"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for p in files:
            if total <= self.disk_bytes:
                break
            total -= p.stat().st_size
            p.unlink(missing_ok=True)


def _stored(features):
    """The features as written: one CPU tensor, or a list of them (a network of several maps)."""
    if isinstance(features, (tuple, list)):
        return [f.detach().cpu().contiguous() for f in features]
    return features.detach().cpu().contiguous()


def _answering(precision: str) -> tuple[str, ...]:
    """The entry precisions that answer a request for ``precision``: its own, and fp32."""
    return (precision,) if precision == "fp32" else (precision, "fp32")
