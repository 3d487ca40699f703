"""The seed's entry point: `python -m worker.db.create_tables`."""

from __future__ import annotations

import asyncio
import sys

from worker.db.connection import DatabaseUnavailable
from worker.db.migrate import migrate
from worker.settings import get_settings


def main() -> int:
    print("Creating tables...")
    try:
        asyncio.run(migrate(get_settings().dsn))
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("Tables created successfully!")
    return 0


if __name__ == "__main__":
    sys.exit(main())
