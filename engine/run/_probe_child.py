"""``python -m quantdesk.engine.run._probe_child PATH SETTINGS_JSON``: the probe's child process."""

import sys

from quantdesk.engine.run.probe import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1], sys.argv[2]))
