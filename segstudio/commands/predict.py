"""``segstudio predict``: segment images headless and write palette label PNGs."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from segstudio.commands import CommandError, _ablation
from segstudio.commands._args import THREADS, whole

HELP = ("segment images with a network and write palette label PNGs (and overlays; an instance "
        "model also writes its objects under SegmentationObject/)")
OVERLAY_ALPHA = 0.5
OBJECTS = "SegmentationObject"      # where an instance model's object maps go, under --out
COMMAND = "predict"                 # the mark its PNGs carry (segstudio.io.output_guard)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    parser.add_argument("--model", metavar="NAME",
                        help="an architecture, or a trained model by the name the Model panel "
                             "and `segstudio models` show (chest_xray_unet_lite); not needed "
                             "with --weights: the file says")
    parser.add_argument("--weights", metavar="PATH",
                        help="a segstudio checkpoint, TorchScript archive (.pt), ONNX model "
                             "(.onnx), or a Hugging Face or smp model folder; without it the "
                             "network is UNTRAINED")
    parser.add_argument("--config", choices=("lite", "paper"),
                        help="network size when building without --weights (default: lite "
                             "where the model has it)")
    parser.add_argument("--classes", metavar="PRESET|FILE|NAMES",
                        help="class set for an untrained network (default voc21) or a model "
                             "file of another format: a preset name, a JSON class-set file or "
                             "comma-separated names; a segstudio checkpoint brings its own")
    parser.add_argument("--mean", nargs=3, type=float, metavar=("R", "G", "B"),
                        help="a model file's input mean per channel in 0..1 units (overrides "
                             "its sidecar)")
    parser.add_argument("--std", nargs=3, type=float, metavar=("R", "G", "B"),
                        help="a model file's input standard deviation in 0..1 units")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--tile-size", default=1024, metavar="PX",
                        type=whole(129, why="more than twice the 64 px overlap of tiles"),
                        help="images larger than this run in overlapping tiles (default 1024)")
    parser.add_argument("--threads", type=THREADS, metavar="N",
                        help="torch CPU threads (default: all cores; nothing else is running)")
    parser.add_argument("--crf", action="store_true", help="refine labels with a dense CRF")
    parser.add_argument("--overlay", action="store_true",
                        help="also write NAME_overlay.png: the labels blended over the image")
    parser.add_argument("--ablate", action="append", default=[], metavar="BRANCH",
                        help="replace this probed branch's output (e.g. psp.bin1, "
                             "aspp.image_pool), by zeros unless --ablate-with says otherwise, "
                             "as the Branches view does; repeatable")
    _ablation.add_arguments(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files in DIR that an earlier 'segstudio predict' did not "
                             "write (its own results are replaced without asking)")


def collect_inputs(items: list[str]) -> list[Path]:
    """Image files named directly, plus the images directly inside named folders (sorted)."""
    from segstudio.io.images import is_image_path

    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            for p in sorted(path.iterdir()):
                if is_image_path(p) and not p.is_dir():
                    problem = _not_regular(p)
                    if problem is None:
                        found.append(p)
                    else:                  # a pipe or device: never opened, said so
                        print(f"skipped {p}: {problem}", file=sys.stderr)
        elif path.exists() and _not_regular(path) is not None:
            raise CommandError(f"{item}: {_not_regular(path)}")
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{item}: no such file or folder")
    if not found:
        raise CommandError("no images found in the given inputs")
    stems: dict[str, Path] = {}
    for path in found:
        if path.stem in stems and stems[path.stem] != path:
            raise CommandError(f"{stems[path.stem]} and {path} would both write "
                               f"{path.stem}.png; predict them into separate --out folders")
        stems[path.stem] = path
    return found


def _not_regular(path: Path) -> str | None:
    """Why ``path`` must not be opened (a pipe, device or socket), or None."""
    from segstudio.io.regular_files import check_regular

    try:
        check_regular(path)
    except OSError as exc:
        return getattr(exc, "reason", None) or str(exc)
    return None


def shard(paths: list[Path]) -> tuple[list[Path], int, int]:
    """This process's share of ``paths`` under torchrun (RANK/WORLD_SIZE), else all of them."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise CommandError("RANK and WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise CommandError(f"RANK {rank} does not fit WORLD_SIZE {world}")
    return paths[rank::world], rank, world


def read_rgb8(path: Path) -> np.ndarray:
    """Pixels of ``path`` as H×W×3 uint8; unreadable files raise ValueError with the reason."""
    from segstudio.io.images import ImageReadError, read_image

    try:
        # A writable copy: the decoder may hand back read-only buffers, which the CRF rejects.
        return np.array(read_image(path).to_rgb8(), order="C")
    except ImageReadError as exc:
        raise ValueError(exc.reason) from None


def write_png(path: Path, image) -> None:
    from segstudio.io.atomic import atomic_write_with
    from segstudio.io.output_guard import png_mark

    atomic_write_with(path, lambda f: image.save(f, format="PNG", pnginfo=png_mark(COMMAND)))


def object_png(instances: np.ndarray):
    """An instance-id map as a ``SegmentationObject`` image in VOC colours (ids past 254 cannot
    be stored, 255 being void, and are left out as no object)."""
    from PIL import Image

    from segstudio.core.palette import VOC_COLORMAP

    ids = np.asarray(instances)
    im = Image.fromarray(np.where(ids < 255, ids, 0).astype(np.uint8))
    im.putpalette(VOC_COLORMAP.reshape(-1).tolist())
    return im


def predict_bytes(height: int, width: int, classes: int, crf: bool) -> int:
    """About the peak bytes predicting one image holds beside the network: the class
    probabilities with the tiles' blending sums and the softmax (three float32 copies of
    classes × pixels), the labels, the RGB copy and the overlay; the CRF adds its own copy."""
    return int(height) * int(width) * (4 * classes * (4 if crf else 3) + 16)


def _check_outputs(out: Path, paths: list[Path], inputs: list[Path], overlay: bool,
                   overwrite: bool) -> None:
    """No result may replace an input, nor a file an earlier predict did not write."""
    from segstudio.io.output_guard import OutputError, check_outputs, written_by

    planned = [out / f"{p.stem}.png" for p in paths]
    if overlay:
        planned += [out / f"{p.stem}_overlay.png" for p in paths]
    try:
        check_outputs(planned, inputs, overwrite=overwrite,
                      ours=lambda p: written_by(p, COMMAND))
    except OutputError as exc:
        raise CommandError(str(exc)) from None


def label_png(labels: np.ndarray, classes):
    from PIL import Image

    # An "L" image given a palette becomes "P" with its values kept as indices.
    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))
    im.putpalette(classes.palette())
    return im


def overlay_image(rgb: np.ndarray, labels: np.ndarray, classes):
    from PIL import Image

    colors = classes.color_table()[labels].astype(np.float32)
    blended = rgb.astype(np.float32) * (1 - OVERLAY_ALPHA) + colors * OVERLAY_ALPHA
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))


def _load_classes(spec: str):
    from segstudio.core.classes import PRESETS, ClassSet, ClassSetError, preset
    from segstudio.io.class_files import load_class_set

    try:
        if spec in PRESETS:
            return preset(spec)
        if "," in spec and not Path(spec).exists():
            return ClassSet(spec.split(","))
        return load_class_set(spec)
    except ClassSetError as exc:
        raise CommandError(f"--classes {spec}: {exc}") from None


def model_overrides(args: argparse.Namespace):
    """What the command line says about a model file (over its sidecar), checked."""
    from segstudio.io.model_sidecar import ModelFacts, channels

    facts = {}
    for what in ("mean", "std"):
        values = getattr(args, what, None)
        if values is not None:
            try:
                facts[what] = channels(values, f"--{what}", positive=what == "std")
            except ValueError as exc:
                raise CommandError(str(exc)) from None
    if args.classes:
        facts["classes"] = _load_classes(args.classes)
    return ModelFacts(**facts)


def _config(args: argparse.Namespace) -> str:
    """The asked-for configuration, else lite, else the model's only one (torchvision nets)."""
    if args.config:
        return args.config
    from segstudio.models import registry

    try:
        configs = registry.get_spec(args.model).configs
    except KeyError:
        return "lite"  # the build then reports the unknown name with the known ones
    return "lite" if "lite" in configs else configs[0]


def _trained_model_by_name(args: argparse.Namespace) -> None:
    """``--model`` naming a trained model of the Model panel's list (not an architecture):
    its checkpoint becomes ``--weights``; a name that is neither is one line listing both."""
    from segstudio.models.named_models import find_named_model, named_models
    from segstudio.models.registry import REGISTRY

    if args.model in REGISTRY:
        return
    found = find_named_model(args.model)
    if found is None:
        trained = ", ".join(m.name for m in named_models()[:8])
        raise CommandError(f"--model {args.model}: neither an architecture ({', '.join(REGISTRY)})"
                           f" nor a trained model ({trained} …; `segstudio models` lists all)")
    args.weights, args.model = str(found.path), None


def _make_predictor(args: argparse.Namespace):
    from segstudio.models.checkpoint import CheckpointError
    from segstudio.models.device import DeviceError
    from segstudio.models.engine import Predictor, PredictorError
    from segstudio.models.formats import ModelFormatError, load_any

    device = args.device
    if device == "auto" and "LOCAL_RANK" in os.environ:
        import torch

        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    threads = args.threads
    if threads is None and not os.environ.get("SEGSTUDIO_TORCH_THREADS"):
        threads = os.cpu_count() or 1  # headless: no GUI thread needs a core kept free
    if threads is not None and threads < 1:
        raise CommandError(f"--threads {threads}: must be at least 1")
    kw = dict(device=device, precision=args.precision, tile_size=args.tile_size,
              num_threads=threads)
    try:
        if args.model and not args.weights:
            _trained_model_by_name(args)
        if args.weights:
            loaded = load_any(args.weights, model_overrides(args))
            if args.model and loaded.format != "segstudio":
                raise CommandError(f"--model {args.model}: {loaded.title} "
                                   f"({loaded.meta.arch}) brings its own network; "
                                   "leave --model out")
            if args.model and loaded.meta.arch != args.model:
                raise CommandError(f"{loaded.title}: holds a {loaded.meta.arch!r} network, "
                                   f"but {args.model!r} was expected")
            return Predictor.from_model(loaded, **kw)
        if not args.model:
            raise CommandError("--model NAME or --weights PATH is needed")
        if args.mean or args.std:
            raise CommandError("--mean and --std describe a model file: give --weights")
        classes = _load_classes(args.classes or "voc21")
        print(f"WARNING: no --weights given: {args.model!r} has RANDOM, UNTRAINED weights; "
              "its labels are meaningless.", file=sys.stderr)
        return Predictor.untrained(args.model, classes, config=_config(args), **kw)
    except (CheckpointError, DeviceError, PredictorError, ModelFormatError) as exc:
        raise CommandError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    _ablation.check(args)
    everything = collect_inputs(args.inputs)
    paths, rank, world = shard(everything)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: exists and is not a folder")
    _check_outputs(out, paths, everything, args.overlay, args.overwrite)
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory
    from segstudio.io.output_guard import Inputs, OutputError, check_output, written_by
    from segstudio.models import domain

    known_inputs = Inputs(("the input", p) for p in everything)

    predictor = _make_predictor(args)
    if (unchecked := domain.unchecked_warning(predictor.meta)) is not None:
        print(f"warning: {unchecked}", file=sys.stderr)
    ablation = None
    if args.ablate:         # hooks that replace the branches for the rest of the command
        from segstudio.explain.probes import ProbeError
        from segstudio.models.registry import REGISTRY

        if predictor.foreign:
            raise CommandError(f"--ablate: {predictor.meta.config} ({predictor.meta.arch}) has "
                               "no named branches; only segstudio's own architectures have")
        try:
            spec = REGISTRY.get(predictor.meta.arch)
            ablation = _ablation.Ablation(args, predictor, dict(spec.branches) if spec else {},
                                          read_rgb8, paths)
        except ProbeError as exc:
            raise CommandError(f"--ablate: {exc}") from None
        print(f"zeroed branches: {', '.join(args.ablate)}" if ablation.how == "zero" else
              f"replaced branches: {', '.join(args.ablate)} by their {ablation.note}")
    classes = predictor.meta.classes
    who = f"[rank {rank}/{world}] " if world > 1 else ""
    name = f"{predictor.meta.config} ({predictor.meta.arch}" if predictor.foreign else \
        f"{predictor.meta.arch} ({predictor.meta.config}"
    print(f"{who}{name}, "
          f"{'trained' if predictor.trained else 'UNTRAINED'}) on {predictor.device}, "
          f"{predictor.precision_note}: {len(paths)} image(s) -> {out}")
    failures = 0
    said = predictor.precision_note
    for i, path in enumerate(paths, 1):
        start = time.perf_counter()
        try:
            rgb = read_rgb8(path)
        except (ValueError, OSError) as exc:
            failures += 1
            print(f"{who}[{i}/{len(paths)}] {path}: skipped: {exc}", file=sys.stderr)
            continue
        try:
            require_memory(predict_bytes(*rgb.shape[:2], len(classes), args.crf),
                           f"predicting {path.name} ({rgb.shape[1]}×{rgb.shape[0]})")
        except NotEnoughMemory as exc:
            raise CommandError(str(exc)) from None
        if ablation is not None:
            try:
                ablation.before(path, rgb)
            except ProbeError as exc:
                raise CommandError(f"--ablate: {exc}") from None
        pred = predictor.predict(rgb)
        if pred.precision_note != said:          # "auto" settled on the first image
            said = pred.precision_note
            print(f"{who}precision {said}", flush=True)
        labels = pred.labels
        finding = domain.check(predictor.meta, pred, rgb)
        if finding is not None and finding.out_of_domain:
            print(f"warning: {who}{path.name}: {finding.message()}", file=sys.stderr, flush=True)
        if args.crf:
            from segstudio.refine.crf import refine_probabilities

            labels = refine_probabilities(rgb, pred.probabilities).argmax(axis=0)
            labels = labels.astype(np.uint8)
        try:
            write_png(out / f"{path.stem}.png", label_png(labels, classes))
            if pred.instances is not None:        # instance models: the objects, VOC-style
                objects = out / OBJECTS / f"{path.stem}.png"
                check_output(objects, known_inputs, overwrite=args.overwrite,
                             ours=lambda p: written_by(p, COMMAND))
                objects.parent.mkdir(parents=True, exist_ok=True)
                write_png(objects, object_png(pred.instances))
            if args.overlay:
                write_png(out / f"{path.stem}_overlay.png", overlay_image(rgb, labels, classes))
        except OutputError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot write into {out}: {exc.strerror or exc}") from None
        notes = f"; {', '.join(pred.notes)}" if pred.notes else ""
        print(f"{who}[{i}/{len(paths)}] {path.name} -> {path.stem}.png "
              f"({rgb.shape[1]}×{rgb.shape[0]}, {time.perf_counter() - start:.2f} s, "
              f"{pred.precision}{notes})", flush=True)
    if failures:
        print(f"{who}{failures} of {len(paths)} image(s) could not be read", file=sys.stderr)
        return 1
    return 0
