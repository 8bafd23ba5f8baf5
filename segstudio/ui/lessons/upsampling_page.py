"""Lesson 1, upsampling: learned transposed convolutions, their checkerboard, unpooling."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QComboBox

from segstudio.ui.explain.figure_export import Figure, Panel
from segstudio.ui.lessons.page import LessonPage
from segstudio.ui.lessons.pictures import (POSITION_NAMES, enlarge, heat, kernel_rgb,
                                           positions_rgb)

SHOWN_CLASS = 1          # lungs on the chest phantoms, water on the context scenes


class UpsamplingPage(LessonPage):
    TITLE = "Upsampling"
    EXPLANATION = (
        "<b>Transposed convolution, bilinear interpolation, max-unpooling.</b> FCN upsamples its "
        "coarse class scores with transposed convolutions that start as bilinear interpolation "
        "and are then trained (Long et al. §3.3). Each output pixel sums kernel weights that "
        "depend on its position modulo the stride, so a kernel that is not a smooth "
        "interpolant prints a pattern repeating every <i>stride</i> pixels, the checkerboard: "
        "its power sits on the frequencies k/stride, which this lab measures in the network's "
        "output logits, for the trained kernels and for the same network with its upsamplers "
        "put back to bilinear (the one-hot ground truth gives the scale). SegNet learns nothing "
        "to upsample: each max-pool remembers which of its 2×2 inputs won, and the decoder's "
        "unpooling puts the value back there (Badrinarayanan et al. §3); the map below shows "
        "those winners for the first pool.")

    def add_controls(self, layout) -> None:
        self.arch = QComboBox(self)
        for arch in ("fcn8s", "fcn16s", "fcn32s"):
            self.arch.addItem(arch.upper().replace("S", "s"), arch)
        layout.addWidget(self.arch)

    def job(self, kind: str, n: int):
        arch = self.arch.currentData()

        def work(progress, cancelled):
            from segstudio.explain.lessons.upsampling import run_upsampling_lab

            return run_upsampling_lab(kind, arch, n)
        return work

    def numbers(self, lab) -> list[str]:
        names = self._class_names(lab.kind)
        board, pools = lab.board, lab.pools
        kernels = "; ".join(
            f"{k.layer} ×{k.stride} ({k.learned.shape[-1]}×{k.learned.shape[-1]}): moved "
            f"{k.change:.1%} from bilinear, {k.cross_share:.2%} of its weight mixes classes"
            for k in lab.kernels)
        shares = ", ".join(f"{name} {share:.1%}" for name, share in zip(POSITION_NAMES,
                                                                         pools.shares))
        untied = ", ".join(f"{share:.1%}" for share in pools.untied_shares)
        return [
            f"{lab.fcn_name}, class {SHOWN_CLASS} ({names[SHOWN_CLASS]}) drawn. {kernels}.",
            f"Checkerboard: share of the logits' spectral power on the stride-{board.stride} "
            f"lattice (frequencies k/{board.stride} per px), mean of {board.images} held-out "
            f"scenes (seed 1): trained upsamplers {board.learned:.3%}, bilinear upsamplers "
            f"{board.bilinear:.3%}, one-hot ground truth {board.ground_truth:.3%}.",
            f"{lab.segnet_name}, first max-pool on held-out scene 0: winning position {shares}; "
            f"{pools.tied:.1%} of the cells are ties (all zero after ReLU), which go to the "
            f"top left; among the others: {untied}. Colours: orange top left, blue top right, "
            "green bottom left, pink bottom right.",
        ]

    @staticmethod
    def _class_names(kind: str) -> tuple[str, ...]:
        from segstudio.train.synth import classes_for

        return tuple(classes_for("xray" if kind == "chest" else "context").names)

    def build_figure(self, lab) -> Figure:
        panels = []
        for k in lab.kernels:
            learned = k.learned[SHOWN_CLASS, SHOWN_CLASS]
            top = float(max(learned.max(), k.bilinear.max()))
            panels.append(Panel(kernel_rgb(learned, top), f"{k.layer}: trained"))
            panels.append(Panel(kernel_rgb(k.bilinear[SHOWN_CLASS, SHOWN_CLASS], top),
                                f"{k.layer}: bilinear start"))
        board = lab.board
        lo = float(min(board.example_learned.min(), board.example_bilinear.min()))
        hi = float(max(board.example_learned.max(), board.example_bilinear.max()))
        diff = np.abs(board.example_learned - board.example_bilinear)
        pools = lab.pools
        channel = int(np.argmin((pools.pool_input == 0).mean(axis=(1, 2))))
        panels += [Panel(board.example_rgb, "held-out scene 0"),
                   Panel(heat(board.example_learned, lo, hi), "logits, trained upsampling"),
                   Panel(heat(board.example_bilinear, lo, hi), "logits, bilinear upsampling"),
                   Panel(heat(diff, 0.0, float(diff.max()) or 1.0, "inferno"),
                         "|trained − bilinear|")]
        panels += self._spectra(board)
        panels += [Panel(enlarge(heat(pools.pool_input[channel]), 256),
                         f"SegNet pool1 input, channel {channel}"),
                   Panel(positions_rgb(pools.winners[channel]),
                         "pool1: which won")]
        return Figure(f"Upsampling: {lab.fcn_name} kernels, checkerboard, SegNet indices",
                      panels, panel_height=200, columns=6)

    @staticmethod
    def _spectra(board) -> list[Panel]:
        """The log power spectra of the example logits, the stride lattice ringed in white."""
        from segstudio.explain.lessons.upsampling import log_spectrum

        learned, points = log_spectrum(board.example_learned, board.stride)
        bilinear, _ = log_spectrum(board.example_bilinear, board.stride)
        lo = float(min(learned.min(), bilinear.min()))
        hi = float(max(learned.max(), bilinear.max()))

        def rings(p: QPainter, scale: float) -> None:
            p.setPen(QPen(QColor(255, 255, 255), 1.5 / scale))
            p.setBrush(Qt.BrushStyle.NoBrush)
            r = 3.0 / scale
            for y, x in points:
                p.drawEllipse(QPointF(x + 0.5, y + 0.5), r, r)

        return [Panel(heat(learned, lo, hi, "inferno"), "log power, trained", rings),
                Panel(heat(bilinear, lo, hi, "inferno"), "log power, bilinear", rings)]
