"""The errors of prompted segmentation, apart so every prompted network's module can raise them."""


class PromptedError(ValueError):
    """A weights file, prompt or image the prompted segmenter cannot use; the message says why."""


class EmbeddingCancelled(Exception):
    """The user cancelled the image embedding."""

