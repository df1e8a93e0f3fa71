"""Parity of an exported classifier: onnxruntime against the PyTorch fake-quant model."""
from typing import Optional

import numpy as np
import torch

from .runtime import session


@torch.no_grad()
def classifier_parity(cfg, model, onnx_path: str, max_batches: Optional[int] = None,
                      widen_int4: bool = True, optimize: bool = True) -> dict:
    """Top-1 of both on the config's test set and their per-image agreement."""
    from mmengine.runner import Runner
    sess = session(onnx_path, widen_int4=widen_int4, optimize=optimize)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    n = ref_correct = ort_correct = agree = 0
    max_abs = 0.0
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        ref = model.architecture(data['inputs'], mode='tensor')
        out = sess.run(None, {'input': data['inputs'].numpy()})[0]
        labels = torch.cat([s.gt_label for s in data['data_samples']]).numpy()
        ref_top, ort_top = ref.argmax(1).numpy(), out.argmax(1)
        n += len(labels)
        ref_correct += int((ref_top == labels).sum())
        ort_correct += int((ort_top == labels).sum())
        agree += int((ref_top == ort_top).sum())
        max_abs = max(max_abs, float(np.abs(out - ref.numpy()).max()))
    return dict(images=n, top1_pytorch=100.0 * ref_correct / n, top1_onnx=100.0 * ort_correct / n,
                agreement=100.0 * agree / n, max_abs_logit_diff=max_abs)
