import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
SHARED = os.path.abspath(os.path.join(ROOT, '..', 'shared'))
CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
           'truck']


@pytest.fixture(scope='session')
def cifar_folder(tmp_path_factory):
    """A CIFAR-10-like image folder with 2 random 32x32 PNGs per class and split."""
    root = tmp_path_factory.mktemp('cifar10')
    rng = np.random.default_rng(0)
    for split in ('train', 'test'):
        for cls in CLASSES:
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(img).save(d / f'{i}.png')
    return str(root)


def run_tool(*args, timeout=600):
    """Run a tool of the project as a user would; return stdout+stderr."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out
