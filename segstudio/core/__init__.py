"""The plain data of segstudio: classes, label maps, undo history, metrics.

Nothing here imports Qt or torch, so it loads fast and is tested without either.
"""
