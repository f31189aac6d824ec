#!/usr/bin/env python
"""spikerl command line (``python train_agent.py COMMAND``, installed as ``spikerl``); the sub-commands live in
:mod:`experiments.cli`."""

import sys

from experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
