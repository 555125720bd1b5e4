"""The examples that ``docs/contract.md`` shows, read from the page itself.

Tests parse them, so that the page cannot drift from what the code accepts and
writes, and no test keeps its own copy of a document's fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.deps import REPO_ROOT

CONTRACT_MD = REPO_ROOT / "docs" / "contract.md"


def trainer_config_example() -> dict[str, Any]:
    """The JSON block under "The trainer configuration document"."""
    page = CONTRACT_MD.read_text()
    section = page.split("### The trainer configuration document", 1)[1]
    block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, f"{CONTRACT_MD}: no JSON example of the configuration document"
    doc: dict[str, Any] = json.loads(block.group(1))
    return doc
