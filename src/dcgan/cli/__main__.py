"""`python -m dcgan.cli`: the same as the `dcgan` command."""

import sys

from dcgan.cli import console_main

sys.exit(console_main())
