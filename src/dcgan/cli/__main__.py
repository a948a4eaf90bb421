"""`python -m dcgan.cli`: the same as the `dcgan` command."""

import sys

from dcgan.cli import main

sys.exit(main())
