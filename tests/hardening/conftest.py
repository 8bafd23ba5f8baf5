"""The UI fixtures (``window``, ``image_folder``) shared with tests/ui."""
from tests.ui.conftest import image_folder, window  # noqa: F401 - fixtures used by name
