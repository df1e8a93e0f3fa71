"""Files that appear whole or not at all, readable like any other file.

:func:`write_atomic` writes a temporary file beside the target and renames
it into place, so a reader (or a job killed mid-write) never sees half a
file. The temporary file gets the mode an ordinary ``open(path, 'w')`` would
give (``0o666`` less the umask, not ``mkstemp``'s ``0o600``), and its name
carries the writer's PID, so a later write removes the leftovers of a writer
that was killed (SIGKILL runs no cleanup).
"""
import errno
import glob
import os
import os.path as osp
import tempfile
from typing import IO, Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def remove_stale_temporaries(path: str) -> int:
    """Delete temporary files of ``path`` left by writers that no longer run."""
    removed = 0
    pattern = osp.join(osp.dirname(osp.abspath(path)), f'.{osp.basename(path)}.*.tmp')
    for tmp in glob.glob(pattern):
        pid = tmp[len(pattern) - len('*.tmp'):].split('.', 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                os.remove(tmp)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def write_atomic(path: str, write: Callable[[IO], None], binary: bool = False) -> str:
    """Call ``write(f)`` on a temporary file, then rename it to ``path``; returns ``path``."""
    path = os.fspath(path)
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=dirname, prefix=f'.{osp.basename(path)}.{os.getpid()}.',
                               suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb' if binary else 'w') as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return path
