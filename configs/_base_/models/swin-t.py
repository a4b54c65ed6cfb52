# The Swin-T backbone (mmdet SwinTransformer, ImageNet-1k Swin-T shape) of every Swin config, and
# the channels of its four stages for the FPN. Use as `backbone=dict(_base_.swin_t, ...)`.
swin_t = dict(
    type='mmdet.SwinTransformer',
    embed_dims=96,
    depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    drop_path_rate=0.2,
    patch_norm=True,
    out_indices=(0, 1, 2, 3),
    convert_weights=False)
swin_t_channels = [96, 192, 384, 768]
