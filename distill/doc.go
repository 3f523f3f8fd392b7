// Package distill recovers the accuracy of a pruned model without labels:
// the FP32 model is the teacher, the pruned model the student, and the
// student is trained (package train, pure Go) to reproduce the teacher's
// tensors on ordinary frames — a folder of images, a video, the device's
// camera — supplied as onnx.Inputs with the detector's own preprocessing.
//
// Distill is the entry point. It first checks that the two models are
// interchangeable: the same inputs, and the same outputs with the same
// shapes (an error names both shapes). Tensors that both graphs have with
// equal shapes are anchors: their channels still correspond. Where the
// student differs (a pruned Conv changes the shapes up to the next
// Conv that reads it), each maximal connected differing region is a block.
//
//   - Block-wise (BlockShare of the budget, 30 % by default): each block is
//     run on its own from the teacher's values of its input anchors and
//     trained to reproduce the teacher's values of its output anchors. It
//     is cheap (only the blocks run on the student) and stable (an error
//     cannot propagate from one block into the next). A student with no
//     differing block skips it.
//   - End to end: the student runs from the image, and the loss is on the
//     head tensors, the outputs of the Convs from which a graph output is
//     reachable without another Conv (for YOLOX the nine pre-sigmoid
//     reg/obj/cls convolutions). With HeadLossDetection (the default) the
//     roles come from the graph: a head read only by Sigmoids is a logit
//     and is matched in probability space (the Bernoulli KL divergence of
//     the sigmoids, so a background cell at −10 against −8 costs nothing);
//     heads of the same spatial size form a level whose confidence at a
//     cell is the product of its logits' highest probabilities (for YOLOX
//     objectness × best class), and a level's box heads — and its class
//     logits when it has a single-channel objectness, which is then
//     matched everywhere — are weighed per cell by that confidence, so the
//     loss concentrates where the teacher sees objects. Heads without a
//     Sigmoid keep the squared error; HeadLossMSE uses it for all (the
//     earlier loss). Each head's loss is divided by the loss of a student
//     that predicts the teacher's (weighted) mean, measured on the phase's
//     first batch (for the squared error, the teacher's variance), so that
//     every head weighs the same whatever its scale. With FeatureWeight
//     the blocks' output anchors join the loss.
//
// Each phase uses a fresh Adam (or SGD with momentum) whose learning rate
// is relative to each weight tensor's RMS (a pretrained detector's tensors
// differ in scale by orders of magnitude), rises over the first steps and
// decays along a cosine. Frames are drawn in a random order per epoch and
// augmented on the preprocessed tensor: horizontal flip, a crop of 70–100 %
// of each side resized back bilinearly, and brightness, contrast and
// saturation jitter kept within the frame's own value range; with Mosaic,
// a share of the frames are mosaics of four. The budget is
// a number of steps and/or a training time measured with an injected clock;
// a cancelled context returns an error and no model.
//
// # Limits
//
// Both models must be float32 and built only from the operators package
// train supports; the image input needs fixed channels, height and width.
// The teacher runs in pure Go too, so one step costs a teacher forward and
// a student forward and backward: on two vCPUs, seconds per batch for
// yolox_nano_416. The student's BatchNorm is folded into its Convs.
package distill
