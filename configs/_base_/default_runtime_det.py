_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['bpnas_mm'], allow_failed_imports=False)
# checkpoints written atomically, --resume explicit about what it resumes from
runner_type = 'bpnas_mm.SafeCheckpointRunner'
