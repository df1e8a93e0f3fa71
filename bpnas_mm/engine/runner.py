"""A runner whose checkpoints appear whole and whose ``--resume`` says what it does.

mmengine writes ``epoch_N.pth`` in place and then ``last_checkpoint``: a job
killed during the save leaves a truncated checkpoint, and one killed before
``last_checkpoint`` is written resumes from an older checkpoint (or, with
none, starts again at iteration 1) without a word. :class:`SafeCheckpointRunner`
(``runner_type='bpnas_mm.SafeCheckpointRunner'``, set by the project's base
runtime configs) writes each checkpoint to a temporary file and renames it
into place, and on ``--resume`` picks the newest complete checkpoint, says
which, and warns about the ones it leaves unused.
"""
import glob
import os
import os.path as osp
import re
from typing import List, Optional, Tuple

from mmengine.dist import master_only
from mmengine.runner import Runner

from ..registry import RUNNERS
from ..utils.atomic_write import remove_stale_temporaries

_CHECKPOINT = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def checkpoints_in(work_dir: str) -> List[str]:
    """``epoch_N.pth`` / ``iter_N.pth`` files of ``work_dir``, oldest first (by mtime)."""
    files = [p for p in glob.glob(osp.join(work_dir, '*.pth'))
             if _CHECKPOINT.match(osp.basename(p))]
    return sorted(files, key=lambda p: (osp.getmtime(p), p))


def choose_resume_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """``(checkpoint to resume from or None, warnings)`` for ``--resume`` in ``work_dir``.

    The newest checkpoint file wins (with atomic saves every such file is
    complete); ``last_checkpoint`` pointing elsewhere, or missing, is reported.
    """
    found = checkpoints_in(work_dir)
    marker = osp.join(work_dir, 'last_checkpoint')
    named = open(marker).read().strip() if osp.isfile(marker) else None
    warnings = []
    if not found:
        if named:
            warnings.append(f'last_checkpoint names {named}, which does not exist')
        return None, warnings
    newest = found[-1]
    if named is None:
        warnings.append(f'no last_checkpoint in {work_dir} (a job killed between saving a '
                        f'checkpoint and recording it); resuming from the newest checkpoint')
    elif osp.abspath(named) != osp.abspath(newest):
        warnings.append(f'last_checkpoint names {named}, but {osp.basename(newest)} is newer and '
                        f'complete; resuming from it')
    return newest, warnings


@RUNNERS.register_module()
class SafeCheckpointRunner(Runner):
    """``mmengine.runner.Runner`` with atomic checkpoints and an explicit resume."""

    @master_only  # as mmengine's: every rank calls it, rank 0 writes
    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs):
        if '://' in str(out_dir):  # a remote backend: its own semantics
            return super().save_checkpoint(out_dir, filename, *args, **kwargs)
        final = osp.join(out_dir, filename)
        for leftover in glob.glob(osp.join(out_dir, '.*.pth.*.tmp')):  # of killed saves
            remove_stale_temporaries(osp.join(out_dir, osp.basename(leftover)[1:].rsplit('.', 2)[0]))
        tmp = f'.{filename}.{os.getpid()}.tmp'
        try:
            super().save_checkpoint(out_dir, tmp, *args, **kwargs)
            os.replace(osp.join(out_dir, tmp), final)
        finally:
            if osp.exists(osp.join(out_dir, tmp)):
                os.remove(osp.join(out_dir, tmp))

    def load_or_resume(self) -> None:
        if not self._has_loaded and self._resume and self._load_from is None:
            chosen, warnings = choose_resume_checkpoint(self.work_dir)
            for w in warnings:
                self.logger.warning(f'--resume: {w}')
            if chosen is None:
                self.logger.warning(f'--resume: no checkpoint in {self.work_dir}; starting from '
                                    f'iteration 1')
                self._resume = False
            else:
                self.logger.info(f'--resume: resuming from {chosen}')
                self._load_from = chosen
        return super().load_or_resume()
