"""Registries of bpnas_mm (scope ``bpnas_mm``), children of MMEngine's roots.

Every component of the plugin registers here, so that mmdet and mmpretrain
configs reach it through ``custom_imports=dict(imports=['bpnas_mm'])`` and a
scoped type such as ``type='bpnas_mm.ResNetCIFAR'``. Contract of each registry:

* ``MODELS``: ``nn.Module`` classes (backbones, model wrappers, quantized
  layers) built from a config dict.
* ``HOOKS``: :class:`mmengine.hooks.Hook` subclasses.
* ``LOOPS``: training/validation loops (:class:`mmengine.runner.BaseLoop`).
* ``RUNNERS``: runners (:class:`mmengine.runner.Runner`).
* ``TASK_UTILS``: helpers built from config that are not modules
  (quantization rule sets, BOPs counters).
* ``DATASETS``: dataset wrappers (the train/search split).
* ``OPTIM_WRAPPER_CONSTRUCTORS``: build one optimizer per parameter set.
* ``MODEL_WRAPPERS``: distributed wrappers.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='bpnas_mm',
                  locations=['bpnas_mm.models', 'bpnas_mm.quant', 'bpnas_mm.algorithms'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='bpnas_mm',
                 locations=['bpnas_mm.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='bpnas_mm',
                 locations=['bpnas_mm.engine'])
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='bpnas_mm',
                   locations=['bpnas_mm.engine'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, scope='bpnas_mm',
                      locations=['bpnas_mm.models'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='bpnas_mm',
                    locations=['bpnas_mm.datasets'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor',
                                      parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope='bpnas_mm', locations=['bpnas_mm.engine'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='bpnas_mm',
                          locations=['bpnas_mm.engine'])
