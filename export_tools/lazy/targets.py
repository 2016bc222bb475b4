"""The explicit table from a LazyConfig ``_target_`` to what the exporter builds for it.

Detectron2 exports its classes under several module paths; each accepted spelling is listed.
A target missing here is refused by name and key path.
"""

from __future__ import annotations


def _aliases(kind: str, *names: str) -> dict[str, str]:
    return {name: kind for name in names}


META_ARCHS = _aliases("GeneralizedRCNN", "detectron2.modeling.GeneralizedRCNN",
                      "detectron2.modeling.meta_arch.GeneralizedRCNN",
                      "detectron2.modeling.meta_arch.rcnn.GeneralizedRCNN")
BACKBONES = {
    **_aliases("FPN", "detectron2.modeling.FPN", "detectron2.modeling.backbone.FPN",
               "detectron2.modeling.backbone.fpn.FPN"),
    **_aliases("SimpleFeaturePyramid", "detectron2.modeling.SimpleFeaturePyramid",
               "detectron2.modeling.backbone.SimpleFeaturePyramid",
               "detectron2.modeling.backbone.vit.SimpleFeaturePyramid"),
}
BOTTOM_UPS = {
    **_aliases("ResNet", "detectron2.modeling.ResNet", "detectron2.modeling.backbone.ResNet",
               "detectron2.modeling.backbone.resnet.ResNet"),
    **_aliases("RegNet", "detectron2.modeling.RegNet", "detectron2.modeling.backbone.RegNet",
               "detectron2.modeling.backbone.regnet.RegNet"),
    **_aliases("ViT", "detectron2.modeling.ViT", "detectron2.modeling.backbone.ViT",
               "detectron2.modeling.backbone.vit.ViT"),
    **_aliases("MViT", "detectron2.modeling.MViT", "detectron2.modeling.backbone.MViT",
               "detectron2.modeling.backbone.mvit.MViT"),
    **_aliases("SwinTransformer", "detectron2.modeling.SwinTransformer",
               "detectron2.modeling.backbone.SwinTransformer",
               "detectron2.modeling.backbone.swin.SwinTransformer"),
}
RESNET_PARTS = {
    **_aliases("make_stage", "detectron2.modeling.ResNet.make_stage",
               "detectron2.modeling.backbone.ResNet.make_stage",
               "detectron2.modeling.backbone.resnet.ResNet.make_stage"),
    **_aliases("make_default_stages", "detectron2.modeling.ResNet.make_default_stages",
               "detectron2.modeling.backbone.ResNet.make_default_stages",
               "detectron2.modeling.backbone.resnet.ResNet.make_default_stages"),
    **_aliases("BasicStem", "detectron2.modeling.backbone.BasicStem",
               "detectron2.modeling.backbone.resnet.BasicStem"),
}
TOP_BLOCKS = {
    **_aliases("LastLevelMaxPool", "detectron2.modeling.backbone.fpn.LastLevelMaxPool"),
    **_aliases("LastLevelP6P7", "detectron2.modeling.backbone.fpn.LastLevelP6P7"),
}
PROPOSAL_GENERATORS = _aliases("RPN", "detectron2.modeling.proposal_generator.RPN",
                               "detectron2.modeling.proposal_generator.rpn.RPN")
RPN_HEADS = _aliases("StandardRPNHead", "detectron2.modeling.proposal_generator.StandardRPNHead",
                     "detectron2.modeling.proposal_generator.rpn.StandardRPNHead")
ANCHOR_GENERATORS = _aliases("DefaultAnchorGenerator",
                             "detectron2.modeling.anchor_generator.DefaultAnchorGenerator",
                             "detectron2.modeling.DefaultAnchorGenerator")
BOX_TRANSFORMS = _aliases("Box2BoxTransform",
                          "detectron2.modeling.box_regression.Box2BoxTransform")
MATCHERS = _aliases("Matcher", "detectron2.modeling.matcher.Matcher")
ROI_HEADS = {
    **_aliases("StandardROIHeads", "detectron2.modeling.StandardROIHeads",
               "detectron2.modeling.roi_heads.StandardROIHeads",
               "detectron2.modeling.roi_heads.roi_heads.StandardROIHeads"),
    **_aliases("CascadeROIHeads", "detectron2.modeling.roi_heads.CascadeROIHeads",
               "detectron2.modeling.CascadeROIHeads",
               "detectron2.modeling.roi_heads.cascade_rcnn.CascadeROIHeads"),
}
BOX_HEADS = _aliases("FastRCNNConvFCHead", "detectron2.modeling.roi_heads.FastRCNNConvFCHead",
                     "detectron2.modeling.roi_heads.box_head.FastRCNNConvFCHead")
BOX_PREDICTORS = _aliases("FastRCNNOutputLayers", "detectron2.modeling.FastRCNNOutputLayers",
                          "detectron2.modeling.roi_heads.FastRCNNOutputLayers",
                          "detectron2.modeling.roi_heads.fast_rcnn.FastRCNNOutputLayers")
MASK_HEADS = _aliases("MaskRCNNConvUpsampleHead",
                      "detectron2.modeling.roi_heads.MaskRCNNConvUpsampleHead",
                      "detectron2.modeling.roi_heads.mask_head.MaskRCNNConvUpsampleHead")
POOLERS = _aliases("ROIPooler", "detectron2.modeling.poolers.ROIPooler")
TEST_AUGMENTATIONS = _aliases("ResizeShortestEdge", "detectron2.data.transforms.ResizeShortestEdge",
                              "detectron2.data.transforms.augmentation_impl.ResizeShortestEdge")
