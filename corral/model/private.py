"""Files only their owner may read (tokens, the store): created mode 0600 from the first byte.

``write_text`` then ``chmod`` leaves a window in which the file has the umask's mode (often
0644: readable by every local user); these functions never do.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600


def write_private(path: str | Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, mode 0600 (a temporary file beside it, renamed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, PRIVATE)  # O_CREAT's mode is masked by the umask; never more than 0600 anyway
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def touch_private(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (an existing file keeps its mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        pass
