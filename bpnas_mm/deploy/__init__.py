"""Deployment: quantized models as standard ONNX integer (QDQ) graphs for onnxruntime.

Not imported by ``bpnas_mm`` itself (it needs ``onnx``); import
``bpnas_mm.deploy.onnx_export`` where an export is wanted.
"""
