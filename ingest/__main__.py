"""``python -m ingest`` is the same as the ``ingest`` command."""

from ingest.cli import main

raise SystemExit(main())
