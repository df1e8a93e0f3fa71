"""``bops=dict(...)``: how a model's BOPs are probed and counted, with its checks."""
from typing import Optional

from ..utils.config_checks import check_bool, check_number, with_defaults

#: how BOPs are probed unless the config says otherwise
DEFAULT_BOPS = dict(input_shape=(3, 32, 32), roi_layers=(), num_rois=None,
                    include_fixed=False)


def check_bops_cfg(bops: Optional[dict]) -> dict:
    """Defaults plus validation of ``bops=dict(...)``: ``input_shape`` (C, H, W) of
    the shape probe, ``roi_layers``/``num_rois`` for RoI heads, ``include_fixed``
    (whether fixed-precision layers count in the totals and the budget)."""
    cfg = with_defaults(bops, DEFAULT_BOPS, 'bops')
    shape = cfg['input_shape']
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise ValueError(f'bops.input_shape must be (C, H, W) positive ints, got {shape!r}')
    cfg['input_shape'] = tuple(shape)
    check_bool(cfg['include_fixed'], 'bops.include_fixed')
    if cfg['num_rois'] is not None:
        check_number(cfg['num_rois'], 'bops.num_rois', low=1)
    return cfg
