"""`python -m pyude`: the `pyude` command."""

import sys

from .cli import main

sys.exit(main())
