# Single-GPU variant of the paper recipe: batch 64, lr scaled linearly (0.06 * 64 / 256). With
# one process MoCo's shuffling BN cannot act (it shuffles across GPUs): the key encoder's BN
# sees the same 64 images as the query encoder's.
_base_ = './detco_r50_8xb32-coslr-200e_in1k.py'
train_dataloader = dict(batch_size=64)
optimizer = dict(lr=0.015)
optim_wrapper = dict(optimizer=optimizer)
