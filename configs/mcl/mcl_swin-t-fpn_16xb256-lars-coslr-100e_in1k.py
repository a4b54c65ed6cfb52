# MCL with a Swin-T backbone (mmdet SwinTransformer), official recipe otherwise (the official code
# trains ResNet-50 only). stem_pos_embed='spe' adds the paper's SPE to the stride-4 patch embedding.
_base_ = './mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='PESwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.2,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=False,
        stem_pos_embed=dict(type='none')),
    neck=dict(in_channels=[96, 192, 384, 768]))
