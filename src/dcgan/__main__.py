"""`python -m dcgan`: the `dcgan` command, as torchrun starts it (`torchrun … -m dcgan train DATA --out RUN`)."""

import sys

from dcgan.cli import console_main

sys.exit(console_main())
