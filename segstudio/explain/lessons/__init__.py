"""The lecture's ideas as measurements on the bundled models: upsampling, skips, the dense CRF.

Each module holds one lab as plain functions returning numbers and arrays (torch and NumPy, no
Qt), so that a script, a test and the Lessons menu's pages measure the same thing.
"""
