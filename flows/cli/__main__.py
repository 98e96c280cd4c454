import sys

from asr_flywheel.flows.cli import main

sys.exit(main())
