"""Small helpers shared by the command-line tools."""
from typing import Dict, Optional, Sequence


def parse_named_counts(items: Sequence[str], allow_all: bool = False
                       ) -> Dict[str, Optional[int]]:
    """Parse ``NAME=COUNT`` items (``NAME=all`` -> None when ``allow_all``).

    >>> parse_named_counts(['train=6', 'val=all'], allow_all=True)
    {'train': 6, 'val': None}
    """
    out = {}
    for item in items:
        name, _, count = item.partition('=')
        if not name or not (count.isdigit() or (allow_all and count == 'all')):
            wanted = 'NAME=COUNT (or NAME=all)' if allow_all else 'NAME=COUNT'
            raise ValueError(f'--splits wants {wanted} items, got {item!r}')
        if name in out:
            raise ValueError(f'--splits: split {name!r} is given twice (its files would '
                             f'overwrite each other); names must be distinct')
        out[name] = None if count == 'all' else int(count)
    return out
