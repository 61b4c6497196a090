import sys

from partkit.cli import main

sys.exit(main())
