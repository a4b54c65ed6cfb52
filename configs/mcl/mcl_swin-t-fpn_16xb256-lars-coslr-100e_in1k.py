# MCL with a Swin-T backbone (mmdet SwinTransformer), official recipe otherwise (the official code
# trains ResNet-50 only). stem_pos_embed='spe' adds the paper's SPE to the stride-4 patch embedding.
_base_ = ['./mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py', '../_base_/models/swin-t.py']
model = dict(
    backbone=dict(_base_.swin_t,
                  _delete_=True,
                  type='PESwinTransformer',
                  with_cp=False,
                  stem_pos_embed=dict(type='none')),
    neck=dict(in_channels=_base_.swin_t_channels))
