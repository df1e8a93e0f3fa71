"""Installation script of bpnas_mm (``pip install -e .``)."""
from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith('#')]


setup(
    name='bpnas_mm',
    version='0.1.0',
    description='BP-NAS mixed-precision quantization search as an OpenMMLab '
    '(MMEngine / MMDetection / MMPretrain) plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['bpnas_mm', 'bpnas_mm.*']),
    package_data={'bpnas_mm.quant': ['csrc/*.c']},  # built on first use (cpu_kernels.py)
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt') + ['mmcv==2.1.0'],
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    license='Apache-2.0',
)
