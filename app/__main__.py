"""``python -m quantdesk``."""

import sys

from quantdesk.main import main

sys.exit(main())
