"""``python -m tools.servers ...``: see tools/servers/cli.py."""

import sys

from tools.servers.cli import main

sys.exit(main())
