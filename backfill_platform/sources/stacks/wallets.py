"""BACKFILL_STACKS_WALLETS: a comma list of addresses, or @path to a file of them (commas or lines, # comments)."""

from __future__ import annotations

import re
from pathlib import Path

# The spec's principal patterns: a c32 address, optionally a contract name after a dot.
PRINCIPAL = re.compile(r"^[0123456789ABCDEFGHJKMNPQRSTVWXYZ]{28,41}(\.[a-zA-Z]([a-zA-Z0-9]|[-_]){0,39})?$")


def parse_wallets(text: str) -> tuple[str, ...]:
    """The addresses in order, each once; a malformed one raises ValueError (the setting is then one line)."""
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
        text = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    found = [w.strip() for w in re.split(r"[,\s]+", text) if w.strip()]
    bad = [w for w in found if not PRINCIPAL.match(w)]
    if bad:
        raise ValueError(bad[0])
    return tuple(dict.fromkeys(found))
