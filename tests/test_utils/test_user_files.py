"""Files the user hands us: each problem one line naming the setting and the file,
before training, with nothing left behind."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from bpnas_mm.models import QuantModel
from bpnas_mm.utils.user_files import (InputError, check_checkpoint_file, check_writable_dir,
                                       load_config, read_state_dict, require_file, run_tool)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _checkpoint(path, module):
    torch.save({'state_dict': module.state_dict(), 'meta': {}}, path)
    return path


def test_a_relative_path_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=rf'^model.x: file not found: a/b.pth \(relative to '
                                         rf'{tmp_path}\)$'):
        require_file('a/b.pth', 'model.x')
    with pytest.raises(InputError, match='is not a file'):
        require_file(str(tmp_path), 'model.x')


def test_a_truncated_checkpoint_is_refused_by_the_cheap_check(tmp_path):
    whole = _checkpoint(tmp_path / 'whole.pth', nn.Linear(64, 64))
    assert check_checkpoint_file(str(whole), 'load_from') == str(whole)
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(whole.read_bytes()[:-2000])
    with pytest.raises(InputError, match=r'^load_from: .*cut.pth is not a readable PyTorch '
                                         r'checkpoint \(truncated'):
        check_checkpoint_file(str(cut), 'load_from')
    text = tmp_path / 'notes.pth'
    text.write_text('hello')
    with pytest.raises(InputError, match='notes.pth is not a readable PyTorch checkpoint'):
        read_state_dict(str(text), 'checkpoint')
    torch.save([1, 2], tmp_path / 'list.pth')
    with pytest.raises(InputError, match='holds no state dict of tensors'):
        read_state_dict(str(tmp_path / 'list.pth'), 'checkpoint')


def test_config_and_output_problems_are_one_line(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n')
    with pytest.raises(InputError, match=r"^config: .*bad.py line 1: '\(' was never closed$"):
        load_config(str(bad))
    (tmp_path / 'file').write_text('')
    with pytest.raises(InputError, match=r'^--out: .*file exists and is not a directory$'):
        check_writable_dir(str(tmp_path / 'file'), '--out')
    with pytest.raises(InputError, match=r'^work_dir: cannot write to .*file'):
        check_writable_dir(str(tmp_path / 'file' / 'sub'), 'work_dir')


class Tiny(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.fc = nn.Linear(width, 2)

    def forward(self, x, data_samples=None, mode='tensor'):
        return self.fc(self.conv(x).mean((2, 3)))


def test_float_checkpoint_truncated_or_of_another_model(tmp_path):
    good = _checkpoint(tmp_path / 'good.pth', Tiny())
    model = QuantModel(Tiny(), quant=dict(w_bits=4, a_bits=4), float_checkpoint=str(good))
    model.init_weights()  # quantizer clips are not in a float checkpoint: fine
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(InputError, match=r'^model.float_checkpoint: .*cut.pth is not a readable'):
        QuantModel(Tiny(), float_checkpoint=str(cut))  # at build time, before any data
    other = _checkpoint(tmp_path / 'other.pth', Tiny(width=4))
    model = QuantModel(Tiny(), float_checkpoint=str(other))
    with pytest.raises(InputError, match=r'^model.float_checkpoint: .*other.pth is a checkpoint '
                                         r'of another model: size mismatch for conv.weight'):
        model.init_weights()
    renamed = tmp_path / 'renamed.pth'
    torch.save({'head.weight': torch.zeros(2)}, renamed)
    model = QuantModel(Tiny(), float_checkpoint=str(renamed))
    with pytest.raises(InputError, match=r"renamed.pth is a checkpoint of another model: 4 of "
                                         r"the model's keys missing .*1 unexpected"):
        model.init_weights()


def test_run_tool_prints_one_line_and_exits_2(capsys):
    @run_tool
    def main():
        raise InputError('--x: file not found: y')

    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    assert capsys.readouterr().err == 'error: --x: file not found: y\n'


def _train(*args):
    return subprocess.run([sys.executable, 'tools/train.py', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_train_refuses_bad_files_in_one_line_and_leaves_nothing(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('x = (\n')
    res = _train(str(bad), '--work-dir', str(tmp_path / 'w1'))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: config: {bad} line 1: '(' was never closed"]

    listed = tmp_path / 'list.json'
    listed.write_text('[1, 2]')
    work = tmp_path / 'w2'
    res = _train('configs/quant/resnet20_cifar10_mp.py', '--work-dir', str(work),
                 '--cfg-options', f'model.mixed_precision={listed}')
    assert res.returncode == 2, res.stderr[-2000:]
    assert 'Traceback' not in res.stderr
    assert res.stderr.strip().splitlines()[-1].endswith(
        f'mixed-precision file: {listed}: not a bpnas_mm mixed-precision file '
        f'(expected "format": "bpnas_mm.mixed_precision")')
    assert not work.exists()  # mmengine's log folder, made before the model, is removed
