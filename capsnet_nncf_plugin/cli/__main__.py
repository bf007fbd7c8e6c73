"""``python -m capsnet_nncf_plugin.cli`` is ``capsq``."""

import sys

from capsnet_nncf_plugin.cli import main

sys.exit(main())
