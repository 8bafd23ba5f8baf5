"""The Lessons menu: one page per idea of the lecture, each measured live on the bundled models.

The numbers come from :mod:`segstudio.explain.lessons` (no Qt), run in a background task; a page
shows them with a one-paragraph explanation and exports its figure (PNG or SVG) for slides.
"""
