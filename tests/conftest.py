"""Session-wide test settings."""

import os

# NNCF compiles a C++ extension on first use (about a minute on 2 cores, more when the machine is busy)
# and gives up after 60 s by default; a slow first compile is not a test failure.
os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "900")
