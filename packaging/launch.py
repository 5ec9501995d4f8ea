"""The bundle's entry point: the same ``main`` as the ``quantdesk`` command."""

import sys

from quantdesk.main import main

if __name__ == "__main__":
    sys.exit(main())
