# The classification experiments' quantization (paper Sec. 4.1-4.2), shared by the ResNet20 and
# ResNet-50 search, retrain and baseline configs: every conv/linear is quantized (W4A4 unless a
# config or a mixed-precision file says otherwise); the stem conv and the classifier stay at
# 8 bit, out of the search and out of the budget; one search group per residual block
# (BasicBlock or Bottleneck). Use as `quant={{_base_.cls_quant}}, grouping={{_base_.cls_grouping}}`.
cls_quant = dict(include=['*'],
                 fixed=[dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)])
cls_grouping = [r'(backbone\.layer\d+\.\d+)\.']
