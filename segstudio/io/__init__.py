"""Reading and writing the files users bring and take away. No Qt, no torch."""
