"""``segstudio eval``: score predicted label PNGs against ground-truth label PNGs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HELP = ("Score predicted label maps against ground truth: per-class IoU and accuracy, mIoU, "
        "mAcc, aAcc (void 255 ignored; classes absent from both left out of the means)")


def add_arguments(p) -> None:
    p.add_argument("--pred", required=True, type=Path, help="folder of predicted label PNGs")
    p.add_argument("--gt", required=True, type=Path, help="folder of ground-truth label PNGs")
    p.add_argument("--classes", default=None,
                   help="class preset (voc21, chest-xray) or class-set JSON file; default: "
                        "classes numbered up to the largest label seen")
    p.add_argument("--pred-objects", type=Path, metavar="DIR",
                   help="folder of predicted instance maps (VOC SegmentationObject PNGs); "
                        "default: PRED/SegmentationObject when it exists")
    p.add_argument("--gt-objects", type=Path, metavar="DIR",
                   help="folder of true instance maps; default: the SegmentationObject folder "
                        "beside GT when it exists")
    from segstudio.commands._args import number

    p.add_argument("--iou", type=number(0.0, 1.0, low_open=True), default=0.5,
                   help="mask IoU at which a predicted object matches a true one (default 0.5)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args) -> int:
    from segstudio.commands import CommandError
    from segstudio.core.classes import PRESETS, ClassSetError, preset
    from segstudio.core.metrics import ConfusionMatrix
    from segstudio.io.class_files import load_class_set
    from segstudio.io.voc import VocError, load_label_png

    for folder in (args.pred, args.gt):
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
    gt_files, pred_files = _label_files(args.gt), _label_files(args.pred)
    common = sorted(gt_files.keys() & pred_files.keys())
    if not common:
        raise CommandError(f"no label PNG in {args.pred} has a namesake in {args.gt}")
    try:
        pairs = [(load_label_png(pred_files[k]), load_label_png(gt_files[k]), k) for k in common]
    except VocError as exc:
        raise CommandError(str(exc)) from None
    for pred, gt, k in pairs:
        if pred.shape != gt.shape:
            raise CommandError(f"{k}.png: prediction is {pred.shape[1]}×{pred.shape[0]} but the "
                               f"ground truth is {gt.shape[1]}×{gt.shape[0]}")
    classes = None
    if args.classes:
        try:
            classes = (preset(args.classes) if args.classes in PRESETS
                       else load_class_set(args.classes))
        except ClassSetError as exc:
            raise CommandError(str(exc)) from None
    if classes is not None:
        names = list(classes.names)
    else:
        top = max(int(a[a != 255].max(initial=0)) for p, g, _ in pairs for a in (p, g))
        names = [str(i) for i in range(top + 1)]
    cm = ConfusionMatrix(len(names))
    for pred, gt, _ in pairs:
        cm.update(gt, pred)
    scores = cm.scores()
    result = scores.to_dict(names)
    result["images"] = len(pairs)
    unscored = unknown_truth(pairs, len(names))
    if unscored:
        result["unscored_gt"] = unscored
        _warn_unscored(unscored, len(names))
    result["unmatched"] = {"pred_only": sorted(pred_files.keys() - gt_files.keys()),
                           "gt_only": sorted(gt_files.keys() - pred_files.keys())}
    objects = _score_objects(args, pairs, names)
    if objects is not None:
        result["instances"] = objects
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(pairs)} image pair(s)")
    print(f"{'class':<20} {'IoU':>7} {'Acc':>7}")
    fmt = lambda v: "    n/a" if v is None else f"{100 * v:6.2f}%"  # noqa: E731
    for name, row in result["per_class"].items():
        print(f"{name:<20} {fmt(row['IoU'])} {fmt(row['Acc'])}")
    print(f"{'mIoU':<20} {fmt(result['mIoU'])}\n{'mAcc':<20} {fmt(result['mAcc'])}\n"
          f"{'aAcc':<20} {fmt(result['aAcc'])}")
    for key, ids in result["unmatched"].items():
        if ids:
            print(f"skipped ({key.replace('_', ' ')}): {', '.join(ids[:10])}"
                  + (" …" if len(ids) > 10 else ""))
    if objects is not None:
        print(f"\ninstances (same class, mask IoU ≥ {args.iou:g}), {objects['images']} image(s)")
        print(f"{'class':<20} {'precision':>9} {'recall':>7} {'TP':>5} {'FP':>5} {'FN':>5}")
        rows = [*objects["per_class"].items(), ("all", objects)]
        for name, row in rows:
            print(f"{name:<20} {fmt(row['precision']):>9} {fmt(row['recall'])} "
                  f"{row['TP']:>5} {row['FP']:>5} {row['FN']:>5}")
    return 0


def _label_files(folder: Path) -> dict[str, Path]:
    """The ``*.png`` files of ``folder`` by stem. Pipes, devices and sockets are never opened
    (reading a pipe would wait for ever): each is skipped with a line on stderr."""
    from segstudio.io.regular_files import check_regular

    found = {}
    for path in sorted(folder.glob("*.png")):
        try:
            check_regular(path)
        except OSError as exc:
            print(f"skipped {path}: {getattr(exc, 'reason', None) or exc}", file=sys.stderr)
            continue
        found[path.stem] = path
    return found


def unknown_truth(pairs, num_classes: int) -> dict | None:
    """Ground-truth pixels holding a value that is neither a class nor void (255): they cannot
    be scored, and saying nothing would hide a class set that does not fit the labels."""
    files, values, total = {}, set(), 0
    for _, gt, k in pairs:
        outside = (gt >= num_classes) & (gt != 255)
        count = int(outside.sum())
        if count:
            files[k] = count
            values.update(int(v) for v in np.unique(gt[outside]))
            total += count
    if not total:
        return None
    return {"pixels": total, "values": sorted(values), "files": files}


def _warn_unscored(unscored: dict, num_classes: int) -> None:
    files = unscored["files"]
    shown = ", ".join(f"{k}.png ({n})" for k, n in list(files.items())[:10])
    more = f" and {len(files) - 10} more" if len(files) > 10 else ""
    values = ", ".join(str(v) for v in unscored["values"])
    print(f"warning: {unscored['pixels']} ground-truth pixel(s) in {len(files)} file(s) hold "
          f"value(s) {values}, outside the {num_classes} classes (0..{num_classes - 1}) and not "
          f"void (255); they were not scored: {shown}{more}", file=sys.stderr)


def _objects_folder(given: Path | None, default: Path) -> Path | None:
    from segstudio.commands import CommandError

    if given is not None and not given.is_dir():
        raise CommandError(f"{given} is not a folder")
    return given if given is not None else (default if default.is_dir() else None)


def _score_objects(args, pairs, names) -> dict | None:
    """Instance precision and recall where both predicted and true object maps exist."""
    from segstudio.commands import CommandError
    from segstudio.core.instance_metrics import InstanceCounts, match_instances
    from segstudio.io.voc import VocError, load_label_png

    pred_dir = _objects_folder(args.pred_objects, args.pred / "SegmentationObject")
    gt_dir = _objects_folder(args.gt_objects, args.gt.parent / "SegmentationObject")
    if pred_dir is None or gt_dir is None:
        if args.pred_objects or args.gt_objects:          # asked for, but one side is missing
            side = "--gt-objects" if gt_dir is None else "--pred-objects"
            raise CommandError(f"instance scores need object maps on both sides: name {side}")
        return None
    if not 0 < args.iou <= 1:
        raise CommandError(f"--iou {args.iou:g}: must lie in (0, 1]")
    total, images = InstanceCounts(), 0
    for pred, gt, k in pairs:
        pred_obj, gt_obj = pred_dir / f"{k}.png", gt_dir / f"{k}.png"
        if not (pred_obj.is_file() and gt_obj.is_file()):
            continue
        try:
            p_ids, g_ids = load_label_png(pred_obj), load_label_png(gt_obj)
        except VocError as exc:
            raise CommandError(str(exc)) from None
        if p_ids.shape != pred.shape or g_ids.shape != gt.shape:
            raise CommandError(f"{k}.png: the object map and the class map differ in size")
        total.add(match_instances(g_ids, gt, p_ids, pred, args.iou))
        images += 1
    if not images:
        raise CommandError(f"no object map in {pred_dir} has a namesake in {gt_dir}")
    return {**total.to_dict(names), "images": images, "iou": args.iou}
