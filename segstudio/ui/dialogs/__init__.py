"""The window's dialogs: export, fine-tune, published weights, statistics, label import, the
shortcut sheet and About. :mod:`segstudio.ui.launchers` opens them."""
