import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import DatasetMapper, build_detection_test_loader, build_detection_train_loader
from omegaconf import OmegaConf

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[L(T.RandomFlip)(horizontal=True)],
        image_format="BGR",
        use_instance_mask=True,
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
        ],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)
