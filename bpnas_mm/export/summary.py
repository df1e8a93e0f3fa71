"""Attach BOPs totals of a model to a mixed-precision file."""
from ..bops.cost import summarize_config
from .mixed_precision import MixedPrecision, from_groups


def mixed_precision_of(model, group_bits: dict, source: str, extra: dict = None
                       ) -> MixedPrecision:
    """The file for ``model`` (a QuantModel) with ``group_bits`` per searched group.

    Fixed-precision layers keep their bits. The model's layers are set to these
    bits and the file gets ``summary`` (totals as configured) and
    ``summary_all_layers``, computed by the BOPs counter.
    """
    fixed = {n: (m.w_bits, m.a_bits) for n, m in model.qlayers.items() if m.fixed_precision}
    unknown = set(group_bits) - set(model.groups)
    if unknown:
        raise ValueError(f'groups the model does not have: {sorted(unknown)}; '
                         f'it has {list(model.groups)}')
    mp = from_groups(group_bits, model.groups, fixed=fixed, source=source, extra=extra)
    model.apply_mixed_precision(mp)
    totals = summarize_config(model.layer_costs(), {}, model.bops_cfg['include_fixed'])
    mp.extra['summary'] = totals.counted.to_dict()
    mp.extra['summary_all_layers'] = totals.all_layers.to_dict()
    mp.extra['bops_settings'] = dict(input_shape=list(model.bops_cfg['input_shape']),
                                     num_rois=model.bops_cfg['num_rois'])
    return mp
