"""The one error of the workspace's files, apart so that the modules the workspace uses (the
object store) can raise it without importing the workspace."""


class WorkspaceError(Exception):
    """A workspace that cannot be opened or saved, or an item whose files are unusable."""
