# Ablation of the MCL CPU demo (paper Table 8, loss modes): mode (c) instead of (a): each online
# level is contrasted with the target's adjacent coarser level (level 0 with itself).
# Row 'mcl-c' of tools/run_protocol.py. Everything else is the S = 3, mode (a) demo.
_base_ = '../mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'
model = dict(head=dict(loss_mode='c'))
