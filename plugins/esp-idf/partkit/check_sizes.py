"""ESP-IDF calls this file as its check_sizes.py when CONFIG_PARTKIT_REPLACE_CHECK_SIZES is set."""

import sys

from partkit.idf.check_sizes import main

sys.exit(main())
