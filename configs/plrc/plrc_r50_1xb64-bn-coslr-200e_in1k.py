# Single-GPU variant of the paper recipe: plain BN, batch 64, lr scaled linearly
# (0.03 * 64 / 256). On one process MoCo's shuffle BN is a no-op, so the key encoder's BN sees
# the same batch as the query encoder; expect somewhat weaker features than the 8-GPU recipe.
# 64 images x 256 points = 16384 point queries/keys: the L_c / L_a logits take ~1 GiB each.
_base_ = './plrc_r50_8xb32-coslr-200e_in1k.py'

batch_size = 64
train_dataloader = dict(batch_size=batch_size)
optim_wrapper = dict(optimizer=dict(lr=0.03 * batch_size / 256))
