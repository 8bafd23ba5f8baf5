"""Running a model over video frames, and writing overlay videos, with the stages overlapped.

Three stages run at once: a decode thread fills a bounded queue, the caller's thread does the
heavy step (the network, or blending labels over frames), and a writer thread hands results on
(colouring, PNG or video encoding). OpenCV's decoder, PNG encoding and torch's kernels all
release the GIL, so on a multi-core machine the pipeline runs at the speed of its slowest stage
rather than of the sum. Bounded queues keep memory flat; cancel is polled between frames.
No Qt here: the GUI and the command line share this code.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.class_mapping import remap_prediction
from segstudio.core.classes import ClassSet
from segstudio.io.atomic import follow_umask, temp_prefix
from segstudio.io.decode_memory import NotEnoughMemory, require_memory
from segstudio.io.video import VideoError, VideoSource, is_video_path
from segstudio.io.video_out import VideoOutError, even_size, open_video_out

QUEUE_FRAMES = 4          # decoded frames waiting for the model: enough to hide decode jitter
# Bytes per pixel of a frame that an overlay video holds at once: each queue (QUEUE_FRAMES, plus
# the frame in each stage's hands) with RGB and labels, the blend's temporaries and the encoder's.
_OVERLAY_BYTES_PER_PIXEL = 7 * (QUEUE_FRAMES + 2) + 16
_END = object()           # marks the end of a stage's output


class VideoPipelineError(Exception):
    """A frame range, label map or output file the pipeline cannot use, with the reason."""


@dataclass
class PipelineStats:
    """What a run did and where its time went (busy seconds per stage, wall seconds overall)."""

    frames: int = 0               # frames that went through every stage
    seconds: float = 0.0          # wall time of the whole run
    decode_seconds: float = 0.0   # busy time of the decode thread
    work_seconds: float = 0.0     # busy time of the caller's stage (the model, or blending)
    write_seconds: float = 0.0    # busy time of the writer thread
    starved_seconds: float = 0.0  # time the caller's stage waited for a decoded frame
    cancelled: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Failure:
    """An exception raised in a helper thread, carried to the caller's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_stages(frames: Sequence[int], load: Callable[[int], Any], work: Callable[[int, Any], Any],
               write: Callable[[int, Any], None], cancel: Callable[[], bool] | None = None,
               queue_frames: int = QUEUE_FRAMES,
               cancelled_by: tuple[type[BaseException], ...] = ()) -> PipelineStats:
    """``load(i)`` in a decode thread, ``work(i, loaded)`` here, ``write(i, worked)`` in a writer
    thread, for each frame in order. An exception in any stage stops all three and is raised
    here; ``cancel()`` stops them between frames, as does an exception of a type in
    ``cancelled_by`` raised by ``work`` (``stats.cancelled`` tells)."""
    cancel = cancel or (lambda: False)
    stop = threading.Event()
    loaded: queue.Queue = queue.Queue(maxsize=max(1, queue_frames))
    worked: queue.Queue = queue.Queue(maxsize=max(1, queue_frames))
    stats = PipelineStats()
    write_error: list[BaseException] = []

    def put(q: queue.Queue, value) -> bool:
        # Blocking put that gives up once the run is stopping, so no thread hangs on a full queue.
        while not stop.is_set():
            try:
                q.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def decoder() -> None:
        try:
            for i in frames:
                if stop.is_set():
                    return
                t = time.perf_counter()
                value = load(i)
                stats.decode_seconds += time.perf_counter() - t
                if not put(loaded, (i, value)):
                    return
            put(loaded, _END)
        except BaseException as exc:   # noqa: BLE001 - handed to the caller's thread
            put(loaded, _Failure(exc))

    def writer() -> None:
        while True:
            entry = worked.get()
            if entry is _END:
                return
            if write_error:
                continue               # drain, so the caller never blocks on a dead writer
            i, value = entry
            try:
                t = time.perf_counter()
                write(i, value)
                stats.write_seconds += time.perf_counter() - t
                stats.frames += 1
            except BaseException as exc:   # noqa: BLE001 - re-raised in the caller's thread
                write_error.append(exc)
                stop.set()

    start = time.perf_counter()
    threads = [threading.Thread(target=decoder, name="segstudio-decode", daemon=True),
               threading.Thread(target=writer, name="segstudio-write", daemon=True)]
    for th in threads:
        th.start()
    try:
        while not stop.is_set():
            if cancel():
                stats.cancelled = True
                break
            t = time.perf_counter()
            try:
                # A short wait, so cancel and a failed writer are noticed while starved.
                entry = loaded.get(timeout=0.05)
            except queue.Empty:
                stats.starved_seconds += time.perf_counter() - t
                continue
            stats.starved_seconds += time.perf_counter() - t
            if entry is _END:
                break
            if isinstance(entry, _Failure):
                raise entry.exc
            i, value = entry
            t = time.perf_counter()
            try:
                result = work(i, value)
            except cancelled_by:
                stats.cancelled = True
                break
            stats.work_seconds += time.perf_counter() - t
            worked.put((i, result))
    finally:
        stop.set()
        worked.put(_END)   # the writer finishes what it holds, then ends
        for th in threads:
            th.join()
        stats.seconds = time.perf_counter() - start
    if write_error:
        raise write_error[0]
    return stats


def overlay_memory(width: int, height: int) -> int:
    """About the peak bytes writing an overlay video of ``width`` × ``height`` frames holds."""
    return _OVERLAY_BYTES_PER_PIXEL * int(width) * int(height)


def frame_range(first: int, last: int, frame_count: int) -> list[int]:
    """Frames ``first..last`` inclusive, checked against a video of ``frame_count`` frames."""
    if not 0 <= first <= last < frame_count:
        raise VideoPipelineError(f"frames {first}–{last} do not lie within 0–{frame_count - 1} "
                                 "with the first not after the last")
    return list(range(first, last + 1))


def predict_frames(source: VideoSource, predictor, frames: Iterable[int],
                   on_result: Callable[[int, Any], None],
                   cancel: Callable[[], bool] | None = None, *,
                   queue_frames: int = QUEUE_FRAMES) -> PipelineStats:
    """Run ``predictor.predict`` on ``frames`` of ``source``, calling ``on_result(frame,
    prediction)`` in the writer thread, in frame order.

    ``cancel`` is polled between frames and by the Predictor between tiles; a cancelled run
    returns with ``stats.cancelled`` set, having delivered every frame it finished.
    """
    from segstudio.models.engine import PredictionCancelled

    frames = list(frames)
    for i in frames:
        if not 0 <= i < source.frame_count:
            raise VideoPipelineError(f"{source.path.name}: frame {i} is outside "
                                     f"0–{source.frame_count - 1}")

    def work(_i: int, rgb: np.ndarray):
        return predictor.predict(rgb, cancel=cancel)

    return run_stages(frames, source.read, work, on_result, cancel, queue_frames,
                      cancelled_by=(PredictionCancelled,))


def blend_overlay(rgb: np.ndarray, labels: np.ndarray | None, table: np.ndarray,
                  shown: np.ndarray, opacity: float) -> np.ndarray:
    """``rgb`` with each shown class painted over it at ``opacity`` (H×W×3 uint8, a new array).

    ``table`` is the 256×3 colour table, ``shown`` a 256-entry boolean mask of classes to paint.
    Every step is an OpenCV call, which releases the GIL: NumPy's fancy indexing would hold it,
    and stall the network running in the next thread for the whole blend.
    """
    import cv2

    out = np.array(rgb, dtype=np.uint8, order="C", copy=True)
    if labels is None:
        return out
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    mask = cv2.LUT(labels, shown.astype(np.uint8))
    if not cv2.countNonZero(mask):
        return out
    colors = cv2.LUT(cv2.merge([labels, labels, labels]),
                     np.ascontiguousarray(table, np.uint8).reshape(256, 1, 3))
    mixed = cv2.addWeighted(out, 1.0 - opacity, colors, opacity, 0.0)
    cv2.copyTo(mixed, mask, out)
    return out


@dataclass
class OverlayVideo:
    """A written overlay video: where, how many frames, how many of them had labels, and the
    codec it is encoded in (``segstudio.io.video_out``)."""

    path: Path
    frames: int
    labelled: int
    stats: PipelineStats
    codec: str = ""


def write_overlay_video(video_path: str | Path,
                        labels_for_frame: Callable[[int], np.ndarray | None],
                        classes: ClassSet, out_path: str | Path, opacity: float = 0.5, *,
                        frames: Sequence[int] | None = None, hidden: Iterable[int] = (0,),
                        fps: float | None = None,
                        progress: Callable[[int, int], None] | None = None,
                        cancel: Callable[[], bool] | None = None) -> OverlayVideo | None:
    """Write ``out_path`` (mp4: H.264 where an installed encoder has it, else 'mp4v'; the
    result names it): each frame of ``video_path`` with its labels blended over it; a frame
    whose ``labels_for_frame(i)`` is None is written as it is.

    Classes in ``hidden`` (background by default, as on screen) are not painted. The file is
    written under a temporary name and renamed when complete, so a cancelled (returns None) or
    failed export leaves no partial video. Both codecs keep even sizes only: an odd width or
    height loses its last column or row.
    """
    if not 0.0 <= opacity <= 1.0:
        raise VideoPipelineError(f"opacity {opacity} must lie between 0 and 1")
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise VideoPipelineError(f"{out_path.name}: the overlay video is written as .mp4")
    if out_path.exists() and out_path.resolve() == Path(video_path).resolve():
        raise VideoPipelineError(f"{out_path.name}: the overlay video cannot replace its source")
    try:
        source = VideoSource(video_path, cache_frames=2)
    except VideoError as exc:
        raise VideoPipelineError(str(exc)) from None
    with source:
        chosen = list(range(source.frame_count)) if frames is None else list(frames)
        if not chosen:
            raise VideoPipelineError(f"{source.path.name}: no frames to write")
        for i in chosen:
            if not 0 <= i < source.frame_count:
                raise VideoPipelineError(f"{source.path.name}: frame {i} is outside "
                                         f"0–{source.frame_count - 1}")
        rate = float(fps or source.fps or 25.0)
        return _write(source, chosen, labels_for_frame, classes, out_path, opacity, hidden, rate,
                      progress, cancel)


def _write(source: VideoSource, frames: list[int], labels_for_frame, classes: ClassSet,
           out_path: Path, opacity: float, hidden: Iterable[int], rate: float, progress,
           cancel) -> OverlayVideo | None:
    table = classes.color_table()
    # As on screen: every value is painted (void, and values past the class set, which are
    # data errors worth seeing) except the hidden classes.
    shown = np.ones(256, bool)
    for c in hidden:
        shown[int(c)] = False
    try:
        height, width = source.read(frames[0]).shape[:2]
    except VideoError as exc:
        raise VideoPipelineError(str(exc)) from None
    try:
        require_memory(overlay_memory(width, height),
                       f"an overlay video of {width}×{height} frames")
    except NotEnoughMemory as exc:
        raise VideoPipelineError(str(exc)) from None
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(out_path.name), suffix=".part.mp4",
                                        dir=out_path.parent)
        os.close(fd)
        follow_umask(tmp_name)    # mkstemp makes it owner-only; the video is an ordinary file
    except OSError as exc:
        raise VideoPipelineError(f"{out_path}: cannot write there ({exc.strerror or exc})") from None
    tmp = Path(tmp_name)
    out_w, out_h = even_size(width, height)
    try:
        writer = open_video_out(tmp, rate, (out_w, out_h))
    except VideoOutError as exc:
        tmp.unlink(missing_ok=True)
        raise VideoPipelineError(str(exc)) from None
    labelled = 0
    try:

        def load(i: int):
            rgb = source.read(i)
            labels = labels_for_frame(i)
            if labels is not None:
                labels = np.asarray(labels)
                if labels.shape != rgb.shape[:2]:
                    raise VideoPipelineError(
                        f"{source.path.name}: the labels of frame {i} are "
                        f"{labels.shape[1] if labels.ndim > 1 else '?'}×{labels.shape[0]} but the "
                        f"frame is {rgb.shape[1]}×{rgb.shape[0]}")
            return rgb, labels

        def work(i: int, loaded):
            nonlocal labelled
            rgb, labels = loaded
            if rgb.shape[:2] != (height, width):
                raise VideoPipelineError(f"{source.path.name}: frame {i} is "
                                         f"{rgb.shape[1]}×{rgb.shape[0]}, not {width}×{height}")
            labelled += labels is not None
            return blend_overlay(rgb, labels, table, shown, opacity)[:out_h, :out_w]

        done = 0

        def write(_i: int, rgb: np.ndarray) -> None:
            nonlocal done
            try:
                writer.write(rgb)
            except Exception as exc:  # noqa: BLE001 - an encoder reports a full disk its own way
                raise VideoPipelineError(_cannot_write(out_path, exc)) from None
            done += 1
            if progress is not None:
                progress(done, len(frames))

        try:
            stats = run_stages(frames, load, work, write, cancel)
        except VideoError as exc:
            raise VideoPipelineError(str(exc)) from None
        try:
            writer.close()                  # the encoder's last frames and the index go now
        except Exception as exc:  # noqa: BLE001 - as in write
            raise VideoPipelineError(_cannot_write(out_path, exc)) from None
        if stats.cancelled:
            return None
        _check_complete(tmp, out_path, stats.frames)
        os.replace(tmp, out_path)
    except OSError as exc:
        raise VideoPipelineError(_cannot_write(out_path, exc)) from None
    finally:
        # Whatever failed, the temporary goes and an earlier video at out_path stays: a second
        # failure while closing must not skip the removal.
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
    return OverlayVideo(out_path, stats.frames, labelled, stats, writer.codec)


def _cannot_write(out_path: Path, exc: BaseException) -> str:
    """One line for a write that failed (a full disk, a lost drive): the reason, and that the
    earlier file, if any, is kept."""
    reason = (getattr(exc, "strerror", None)
              or (str(exc).strip().splitlines() or [type(exc).__name__])[0])
    kept = "; the earlier video there is kept" if out_path.exists() else ""
    return f"{out_path}: cannot be written ({reason}){kept}"


def _check_complete(tmp: Path, out_path: Path, frames: int) -> None:
    """Refuse a written video that does not read back with every frame: OpenCV's writer says
    nothing when the disk fills, and leaves a file without its index."""
    import cv2

    cap = cv2.VideoCapture(str(tmp))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    if count < frames:
        raise VideoPipelineError(_cannot_write(out_path, OSError(
            0, f"only {count} of {frames} frames could be read back; the disk may be full")))


def workspace_overlay_video(ws, source: str | Path, out_path: str | Path, opacity: float = 0.5,
                            *, frames: Sequence[int] | None = None, hidden: Iterable[int] = (0,),
                            labels_now: dict[int, np.ndarray] | None = None,
                            progress: Callable[[int, int], None] | None = None,
                            cancel: Callable[[], bool] | None = None) -> OverlayVideo | None:
    """The overlay video of workspace ``ws``'s video ``source`` (a path inside the workspace),
    from each frame's saved labels; ``labels_now`` (frame -> labels) overrides them, as the GUI
    does with the frames open on screen. Raises ``VideoPipelineError`` for a source that is not
    one of the workspace's videos."""
    from segstudio.io.workspace import WorkspaceError

    source, rows = _video_items(ws, source)
    labels_now = labels_now or {}

    def labels_for(frame: int) -> np.ndarray | None:
        if frame in labels_now:
            return labels_now[frame]
        row = rows.get(frame)
        return None if row is None else ws.load_labels(ws.items[row])

    try:
        return write_overlay_video(ws.root / source, labels_for, ws.classes, out_path, opacity,
                                   frames=frames, hidden=hidden, progress=progress,
                                   cancel=cancel)
    except WorkspaceError as exc:
        raise VideoPipelineError(str(exc)) from None


def _video_items(ws, source: str | Path) -> tuple[str, dict[int, int]]:
    """(posix path, frame -> workspace row) of the workspace video ``source``."""
    source = Path(source).as_posix()
    rows = {it.frame: row for row, it in enumerate(ws.items)
            if it.frame is not None and Path(it.source).as_posix() == source
            and is_video_path(it.source)}     # not the frames of a multi-frame DICOM
    if not rows:
        raise VideoPipelineError(f"{source}: not a video of the workspace {ws.root.name}")
    return source, rows


def predict_workspace_frames(ws, source: str | Path, predictor, frames: Iterable[int],
                             on_result: Callable[[int, Any], None],
                             cancel: Callable[[], bool] | None = None, *,
                             write_labels: Iterable[int] = (), mapping=None) -> PipelineStats:
    """``predict_frames`` over workspace ``ws``'s video ``source``, keeping each prediction as the
    frame's prediction file (and as its labels for frames in ``write_labels``) in the writer
    thread, then calling ``on_result(row, prediction)`` with the frame's workspace row.

    ``mapping`` (a :class:`~segstudio.core.class_mapping.ClassMapping`) turns the model's class
    indices into the workspace's, by name. A prediction whose class count still differs from
    the workspace's is passed on unwritten: the caller decides what to do about it.
    """
    source, rows = _video_items(ws, source)
    writable = set(write_labels)

    def store(frame: int, prediction) -> None:
        item = ws.items[rows[frame]]
        if mapping is not None:
            remap_prediction(prediction, mapping)
        if prediction.probabilities.shape[0] == len(ws.classes):
            ws.save_prediction(item, prediction.labels)
            if frame in writable:
                ws.write_label_file(item, prediction.labels)
        on_result(rows[frame], prediction)

    with VideoSource(ws.root / source, cache_frames=2) as video:
        return predict_frames(video, predictor, frames, store, cancel)
