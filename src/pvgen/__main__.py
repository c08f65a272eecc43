"""`python -m pvgen`: the same command line as the `pvgen` script (pvgen nested runs a leading `pvgen` this way)."""

from pvgen.cli import main

main()
