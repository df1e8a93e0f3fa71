"""Atomic writes: whole files, ordinary permissions, no leftovers of killed writers."""
import os
import stat
import subprocess
import sys

import pytest

from bpnas_mm.utils.atomic_write import remove_stale_temporaries, write_atomic


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_file_has_the_mode_of_an_ordinary_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(str(tmp_path / 'a.json'), lambda f: f.write('{}'))
        with open(tmp_path / 'plain', 'w') as f:
            f.write('')
    finally:
        os.umask(old)
    assert open(path).read() == '{}'
    assert _mode(path) == _mode(tmp_path / 'plain') == 0o644  # not mkstemp's 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    path = str(tmp_path / 'a.json')
    write_atomic(path, lambda f: f.write('old'))

    def fail(f):
        f.write('half')
        raise RuntimeError('disk full')
    with pytest.raises(RuntimeError):
        write_atomic(path, fail)
    assert open(path).read() == 'old' and os.listdir(tmp_path) == ['a.json']


def test_leftovers_of_a_killed_writer_are_removed(tmp_path):
    path = str(tmp_path / 'mixed_precision.json')
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f'.mixed_precision.json.{dead}.abc123.tmp'
    stale.write_text('half')
    mine = tmp_path / f'.mixed_precision.json.{os.getpid()}.x.tmp'  # a live writer's
    mine.write_text('in progress')
    other = tmp_path / '.other.json.1.x.tmp'
    other.write_text('')
    write_atomic(path, lambda f: f.write('{}'))
    assert not stale.exists() and mine.exists() and other.exists()
    assert remove_stale_temporaries(path) == 0
