"""``segstudio train``: train a network on a Pascal VOC tree, keeping the best checkpoint."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from segstudio.commands import CommandError
from segstudio.commands._args import SEED, THREADS, number, whole

HELP = ("train a segmentation network on a Pascal VOC tree (best val-mIoU checkpoint kept; "
        "run under torchrun for several processes)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="NAME", help="architecture name")
    parser.add_argument("--config", default="lite", choices=("lite", "paper"),
                        help="network size (default lite)")
    parser.add_argument("--data", required=True, metavar="VOC_DIR",
                        help="VOC tree with train and val splits (e.g. from 'demo-data')")
    parser.add_argument("--epochs", type=whole(1), default=10, help="epochs in all (default 10)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="checkpoint to write (FILE.resume holds the state for --resume)")
    parser.add_argument("--batch-size", type=whole(1), default=8, help="per process (default 8)")
    parser.add_argument("--lr", type=number(0.0, low_open=True), default=None,
                        help="base learning rate (default 1e-3 for adamw, 1e-2 for sgd)")
    parser.add_argument("--optimizer", default="adamw", choices=("adamw", "sgd"),
                        help="adamw (default; fast from scratch) or sgd with momentum 0.9")
    parser.add_argument("--balance", action="store_true",
                        help="weight the loss by median frequency balancing (rare, thin classes)")
    parser.add_argument("--crop", type=whole(16, 8192), default=128,
                        help="training crop in px (default 128)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="FILE",
                        help="continue a run: from OUT.resume, or from FILE")
    parser.add_argument("--init", default=None, metavar="CHECKPOINT",
                        help="fine-tune: start from this trained checkpoint of the same model and "
                             "config (classes matched by name; new classes start fresh)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=whole(0, 128), default=0, help="data loading processes")
    parser.add_argument("--threads", type=THREADS, default=None,
                        help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing FILE that is not a segstudio checkpoint (a "
                             "checkpoint, from an earlier run, is replaced without asking)")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, as written into the checkpoint."""
    words = ["segstudio", "train", "--model", args.model, "--config", args.config, "--data",
             args.data, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    if args.lr is not None:
        words += ["--lr", f"{args.lr:g}"]
    if args.balance:
        words.append("--balance")
    words += ["--optimizer", args.optimizer, "--crop", str(args.crop), "--seed", str(args.seed),
              "--device", args.device, "--out", args.out]
    if args.init:
        words += ["--init", args.init]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        words = ["torchrun", f"--nproc-per-node={world}", "-m", "segstudio", *words[1:]]
    return shlex.join(words)


def _is_checkpoint(path) -> bool:
    """Whether ``path`` is a segstudio checkpoint (what a run writes, so a rerun may replace it)."""
    from segstudio.models.checkpoint import CheckpointError, read_meta

    try:
        read_meta(path)
    except (CheckpointError, OSError, ValueError):
        return False
    return True


def check_outputs(args: argparse.Namespace) -> None:
    """The checkpoint and its .resume file never replace the start checkpoint (--init), a
    resume file being read, or anything else that is not a checkpoint without --overwrite."""
    from segstudio.io.output_guard import OutputError, check_output
    from segstudio.train.loop import resume_path

    resume = args.resume if isinstance(args.resume, str) else None
    try:
        check_output(args.out, [("--init", args.init), ("--resume", resume)],
                     overwrite=args.overwrite, ours=_is_checkpoint)
        check_output(resume_path(args.out), [("--init", args.init)], flag="--out's resume file",
                     overwrite=True)
    except OutputError as exc:
        raise CommandError(str(exc)) from None


def training_bytes(model_name: str, config: str, num_classes: int, batch: int,
                   crop: int) -> int | None:
    """About the peak bytes one training step of this registry network holds (see
    :mod:`segstudio.train.memory`); None when it cannot be worked out (the run then goes ahead
    unchecked)."""
    from segstudio.train.memory import registry_step_bytes

    return registry_step_bytes(model_name, config, num_classes, batch, crop)


def _check_memory(args: argparse.Namespace) -> None:
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory
    from segstudio.train.loop import TrainError, read_classes

    try:
        classes = read_classes(Path(args.data))
    except TrainError:
        return                                  # the run says what is wrong with the data
    needed = training_bytes(args.model, args.config, len(classes), args.batch_size, args.crop)
    if needed is None:
        return
    try:
        require_memory(needed, f"training {args.model} ({args.config}) on batches of "
                               f"{args.batch_size} crops of {args.crop} px")
    except NotEnoughMemory as exc:
        raise CommandError(f"{exc}; lower --batch-size or --crop") from None


def run(args: argparse.Namespace) -> int:
    check_outputs(args)
    _check_memory(args)
    import torch

    from segstudio.models.checkpoint import CheckpointError
    from segstudio.train.loop import TrainError, TrainProgress, train

    if args.threads:
        torch.set_num_threads(args.threads)

    def report(p: TrainProgress) -> None:
        if p.val is None:
            return
        mark = "  best" if p.best else ""
        print(f"epoch {p.epoch}/{p.epochs}  loss {p.loss:.4f}  lr {p.lr:.2e}  "
              f"val mIoU {p.val.miou:.4f}  mAcc {p.val.macc:.4f}  {p.seconds:.1f} s{mark}",
              flush=True)

    try:
        result = train(args.model, args.data, config=args.config, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, crop=args.crop, out=args.out,
                       resume=args.resume, progress=report, device=args.device,
                       seed=args.seed, optimizer=args.optimizer, workers=args.workers,
                       balance=args.balance, init=args.init,
                       notice=lambda text: print(text, flush=True),
                       command=command_line(args))
    except (TrainError, CheckpointError) as exc:
        raise CommandError(str(exc)) from None
    if int(os.environ.get("RANK", "0")) == 0:
        if result.best_epoch:
            print(f"best: epoch {result.best_epoch}, val mIoU {result.best_miou:.4f}, "
                  f"mAcc {result.best_macc:.4f} -> {args.out}")
        else:
            print("no epoch finished; nothing written", file=sys.stderr)
            return 1
    return 0
