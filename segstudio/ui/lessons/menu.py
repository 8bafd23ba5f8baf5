"""The Lessons menu: one entry per lab, each opening (or raising) its page."""

from __future__ import annotations

LESSONS = (
    ("upsampling", "&1 Upsampling: transposed convolution, bilinear, unpooling"),
    ("skips", "&2 Skips: FCN-32s, 16s and 8s at the boundary"),
    ("crf", "&3 Dense CRF: DeepLab before and after"),
    ("atrous", "&4 Atrous convolution and pyramid pooling"),
)


def page_class(name: str):
    if name == "upsampling":
        from segstudio.ui.lessons.upsampling_page import UpsamplingPage
        return UpsamplingPage
    if name == "skips":
        from segstudio.ui.lessons.skips_page import SkipsPage
        return SkipsPage
    if name == "crf":
        from segstudio.ui.lessons.crf_page import CrfPage
        return CrfPage
    from segstudio.ui.lessons.atrous_page import AtrousPage
    return AtrousPage


def open_lesson(window, name: str):
    """Show the page of lab ``name`` (one per window, kept while open) and start measuring."""
    pages = getattr(window, "lesson_pages", None)
    if pages is None:
        pages = window.lesson_pages = {}
    page = pages.get(name)
    if page is None:
        page = page_class(name)(window)
        pages[name] = page
        page.show()
        if hasattr(page, "run"):
            page.run()
    else:
        page.show()
        page.raise_()
        page.activateWindow()
    return page


def build_lessons_menu(window, menu) -> None:
    """Fill ``menu`` with one entry per lab."""
    window.lesson_actions = {
        name: window._action(text, lambda _=False, n=name: open_lesson(window, n), None, menu)
        for name, text in LESSONS}
