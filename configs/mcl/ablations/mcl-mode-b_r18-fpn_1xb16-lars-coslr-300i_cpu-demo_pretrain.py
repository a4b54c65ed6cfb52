# Ablation of the MCL CPU demo (paper Table 8, loss modes): mode (b) instead of (a): each online
# level is contrasted with the target's same level.
# Row 'mcl-b' of tools/run_protocol.py. Everything else is the S = 3, mode (a) demo.
_base_ = '../mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'
model = dict(head=dict(loss_mode='b'))
