"""The receptive-field view of a model file's network (TorchScript, Hugging Face, smp).

The theoretical field is traced as for segstudio's networks when the tracer knows every
operation the network runs; otherwise the view says why there is none (TorchScript runs out of
the tracer's sight; an attention layer mixes pixels in a way it does not follow). The effective
field needs only gradients, so every torch network has one, measured against the theoretical
field where there is one and against the image where there is not. A model file has no
random-weight twin of the same architecture to compare with, and the view says so.

The receptive-field view hands in its own tracing and wording (:func:`field_at`'s ``traced``,
``describe`` and ``quantity``), so that both kinds of network are read and told alike.
"""

from __future__ import annotations

TWIN_NOTE = ("No random-weight twin: a model file carries its trained weights only, and its "
             "architecture cannot be rebuilt with fresh ones here.")


def _blind_spots(ctx, loaded, size) -> list[str]:
    from segstudio.explain.foreign import tracer_blind_spots

    cache = ctx.session.fields
    key = (loaded.source, size, "blind")
    if key not in cache:
        cache[key] = tracer_blind_spots(loaded.model, size)
    return cache[key]


def no_field_reason(blind: list[str]) -> str:
    from segstudio.explain.foreign import TORCHSCRIPT_FIELD

    if blind == ["TorchScript"]:
        return TORCHSCRIPT_FIELD
    shown = ", ".join(blind[:6]) + (f" and {len(blind) - 6} more" if len(blind) > 6 else "")
    return (f"no theoretical field: the tracer does not know how {shown} move pixels (an "
            "attention layer, for one, lets every pixel reach every other), so any field it "
            "drew would be wrong")


def unbounded_erf_text(title: str, erf, quantity: str) -> str:
    """An effective field in words where no theoretical field bounds it."""
    (cy, cx), (dy, dx) = erf.center, erf.offset
    return (f"{title}: {quantity}, mean over {erf.images} image(s). 95 % of it in "
            f"{erf.mass95_px} px = {erf.mass95_in_image_share:.1%} of the image (no "
            f"theoretical field to measure it against). Centre of mass x {cx:.1f}, y "
            f"{cy:.1f}: {dx:+.1f}, {dy:+.1f} px from the click.")


def field_at(ctx, loaded, branch: str, y: int, x: int, with_erf: bool, others: list, *,
             traced, describe, quantity: str) -> dict:
    """The receptive-field view's result for a model file's network at pixel (y, x).

    ``traced()`` gives the theoretical fields (per layer, per unit) as the view traces them,
    ``describe(title, erf)`` an effective field in the view's words, ``quantity`` what it
    differentiates."""
    from segstudio.explain.effective_rf import prediction_erf
    from segstudio.explain.foreign import ImageBounds
    from segstudio.explain.receptive_field import MODEL_OUTPUT

    size = ctx.rgb.shape[:2]
    path = loaded.branches[branch]
    result = {"branch": branch, "path": path, "pixel": (y, x), "model": loaded.title,
              "trained": loaded.trained, "erf": [], "center": None, "curve": (None, ()),
              "marks": []}
    blind = _blind_spots(ctx, loaded, size)
    output_field = ImageBounds(size)
    if blind:
        result.update(field=None, box=None, field_note=(
            f"{branch} ({path}) at pixel x {x}, y {y}: {no_field_reason(blind)}."))
    else:
        # The fields are kept per model and image size for the modules traced then; another
        # module picked since is traced afresh.
        for key in ((loaded.source, size), (loaded.source, size, "units")):
            if path not in ctx.session.fields.get(key, {path: None}):
                del ctx.session.fields[key]
        fields, units = traced()
        if path not in fields or path not in units:
            raise ValueError(f"{branch} ({path}) did not run on this image, so it has no "
                             "receptive field here")
        per_unit = units[path]
        x0, y0, x1, y1 = per_unit.box(*per_unit.unit_at(y, x))
        result.update(field=fields[path], sizes=per_unit.size_range(),
                      unbounded=(y0, x0, y1 + 1, x1 + 1),
                      box=(max(y0, 0), max(x0, 0), min(y1 + 1, size[0]), min(x1 + 1, size[1])))
        output_field = units.get(MODEL_OUTPUT, output_field)
    if with_erf:
        images = [ctx.input(loaded)] + [loaded.to_input(rgb) for rgb in others]
        erf = prediction_erf(loaded.model, images, y, x, field=output_field,
                             cancelled=ctx.cancelled)
        title = "this model's weights"
        result["erf"] = [erf]
        result["center"] = erf.center
        result["erf_texts"] = [unbounded_erf_text(title, erf, quantity) if isinstance(
            output_field, ImageBounds) else describe(title, erf), TWIN_NOTE]
    return result
