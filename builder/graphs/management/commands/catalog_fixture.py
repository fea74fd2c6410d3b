"""`manage.py catalog_fixture --file PATH`: write the body of GET /api/blocks to a file, so
the editor's tests run on the real catalog (`make` writes frontend/src/test/catalog.json
beside the API's types)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from compute.engine import block_catalog


class Command(BaseCommand):
    help = "Write the block catalog as GET /api/blocks serves it (the editor's test fixture)."
    requires_system_checks: list[str] = []  # it reads the engine only; no database, no editor

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", required=True, type=Path, help="where to write it")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        path.write_text(json.dumps(block_catalog(), indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
