// Package nn holds the graph-level building blocks of the models — convolution,
// pooling, batch normalisation, linear layers, activations and losses — built
// only from GoMLX ops whose derivatives are correct to any order on every
// backend, including the pure-Go one.
//
// # Why not GoMLX's layers
//
// GoMLX's own convolution, max-pool and batch-norm layers do not work for this
// project on the pure-Go backend ("simplego"): their gradients need ops it does
// not implement (Reverse, SelectAndScatter, BatchNormForTraining), GoMLX's batch
// norm stops the gradient through the batch statistics, and strided
// convolutions cannot be differentiated twice on XLA. The functions here use
// slices, concatenations, reshapes, reductions, element-wise ops and DotGeneral
// only; every one of these has a VJP that is again built from the same ops, so
// gradients of gradients of gradients (HTR) work.
//
// # Layout
//
// Activations are NHWC ([batch, height, width, channels]) inside the networks,
// while weights keep PyTorch's layouts (conv [O, I, kH, kW], linear [out, in]).
// NHWC makes the im2col patch matrix come out as [N·L, kH·kW·C] with the
// contracted axis innermost, which is the layout the pure-Go DotGeneral
// consumes without a transposition, and its concatenations copy runs of C
// channels instead of single values. Models convert their NCHW inputs once
// (NCHWToNHWC) and flatten in PyTorch's (C, H, W) order (FlattenNCHW).
//
// # Global VJP overrides
//
// Importing this package replaces, in graph.VJPRegistration, the reverse-mode
// rules of three GoMLX node types (see vjp.go): DotGeneral and Dot (GoMLX builds
// their gradients as a broadcast product followed by a sum, 2–4× slower and far
// larger than a matrix product) and Slice (GoMLX's uses Pad, which the pure-Go
// backend lacks). The replacements compute the same values, are closed under
// repeated differentiation, and are checked against finite differences and
// against GoMLX's own rules in this package's tests. They are installed by an
// init function so that they are in place before any gradient is built and are
// never written while another goroutine reads the registry.
//
// On the pure-Go backend the DotGeneral rule also consults a table of
// per-node recipes that Conv2D registers for its matrix products: the same
// adjoints computed from operands laid out so that simplego need not
// transpose the patch matrix (see recipes.go).
package nn
