"""Work off the GUI thread: background tasks, the model runner, the workspace file writer and
the autosave."""
