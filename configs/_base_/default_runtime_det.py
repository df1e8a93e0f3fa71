_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['bpnas_mm'], allow_failed_imports=False)
