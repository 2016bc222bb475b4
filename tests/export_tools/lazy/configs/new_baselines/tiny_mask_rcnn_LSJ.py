"""The LSJ recipe on the tiny model: SyncBN everywhere, conv-BN heads (a lambda), 512 test size."""
import detectron2.data.transforms as T
from detectron2.config.lazy import LazyCall as L
from detectron2.layers.batch_norm import NaiveSyncBatchNorm

from ..common.data.tiny_coco import dataloader
from ..common.models.tiny_mask_rcnn_fpn import model

model.backbone.bottom_up.stem.norm = model.backbone.norm = "SyncBN"
model.backbone.bottom_up.stages[0].norm = "SyncBN"
model.backbone.bottom_up.stages[1].norm = "SyncBN"
model.backbone.bottom_up.stages[2].norm = "SyncBN"
model.backbone.bottom_up.stages[3].norm = "SyncBN"
model.roi_heads.box_head.conv_norm = \
    model.roi_heads.mask_head.conv_norm = lambda c: NaiveSyncBatchNorm(c, stats_mode="N")
model.proposal_generator.head.conv_dims = [-1, -1]
model.roi_heads.box_head.conv_dims = [64, 64, 64, 64]
model.roi_heads.box_head.fc_dims = [256]
model.roi_heads.num_classes = 3

image_size = 1024 // 2
dataloader.test.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=image_size, max_size=image_size),
]
