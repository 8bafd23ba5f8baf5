"""What replaces a branch in the Branches view and the Context tab, and the job that runs it.

The sources are chosen on the GUI thread (which images, from the workspace or generated) and
read in the worker; the replacement itself is :mod:`segstudio.explain.counterfactual`.
"""

from __future__ import annotations

import numpy as np

REFERENCE_IMAGES = 16       # workspace images a mean is taken over, at most


def replacement_sources(window, how: str) -> dict:
    """What a ``mean`` or ``swap`` replacement needs, chosen on the GUI thread: the reference
    images of a mean (the context demo's held-out scenes, generated, for a context image; else
    up to 16 images of the workspace) and the partner of a swap (the workspace's next image)."""
    from segstudio.train.synth_context import context_classes

    ws, doc = window.workspace, window.doc
    items = [it for it in (ws.items if ws is not None else []) if it.frame is None]
    if how == "mean":
        if list(window.classes.names) == list(context_classes().names):
            from segstudio.explain.counterfactual import REFERENCE

            return {"references": None, "note": (
                f"its mean over {REFERENCE['count']} held-out context scenes (generated, seed "
                f"{REFERENCE['seed']}, {REFERENCE['size']} px)")}
        paths = [ws.source_path(it) for it in items[:REFERENCE_IMAGES]]
        return {"references": paths, "note": f"its mean over {len(paths)} image(s) of the "
                                             "workspace"}
    if how == "swap":
        others = [it for it in items if doc is None or it is not doc.item]
        if doc is not None and doc.item in items:
            at = items.index(doc.item)
            others = items[at + 1:] + items[:at]
        if not others:
            return {"partner": None, "note": "its output on another image"}
        partner = ws.source_path(others[0])
        return {"partner": partner, "note": f"its output on {partner.name}"}
    return {"note": "zeros"}


def replaced_labels_in(ctx, loaded, names, how: str, sources: dict) -> np.ndarray:
    """Run in a job: the labels of the image on screen with the branches ``names`` replaced."""
    from segstudio.explain.counterfactual import reference_scenes, replaced_labels
    from segstudio.io.images import read_image

    def rgb_of(path):
        return np.array(read_image(path).to_rgb8(), order="C")

    references = partner = None
    if how == "mean":
        refs = sources.get("references")
        references = reference_scenes() if refs is None else [rgb_of(p) for p in refs]
    elif how == "swap":
        if sources.get("partner") is None:
            raise ValueError("a swap takes the branch's output on another image: open a "
                             "folder with at least two images")
        partner = rgb_of(sources["partner"])
    return replaced_labels(loaded.model, loaded.to_input, loaded.branches, names, how, ctx.rgb,
                           references=references, partner=partner)
