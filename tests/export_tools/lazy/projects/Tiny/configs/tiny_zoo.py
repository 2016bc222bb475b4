from detectron2 import model_zoo

model = model_zoo.get_config("common/models/tiny_mask_rcnn_fpn.py").model
dataloader = model_zoo.get_config("common/data/tiny_coco.py").dataloader
model.roi_heads.num_classes = 3
